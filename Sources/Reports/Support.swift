import Checkpoints
import Foundation
import Imaging

/// Small, audited helpers of the report: relative links, safe URLs, number formats, thumbnails, histograms.
enum ReportSupport {
    /// `target` relative to `directory` (both absolute), percent-encoded for an `href`/`src` attribute.
    static func relativeLink(to target: String, from directory: URL) -> String {
        let from = directory.standardizedFileURL.pathComponents
        let to = URL(fileURLWithPath: target).standardizedFileURL.pathComponents
        var common = 0
        while common < min(from.count, to.count) && from[common] == to[common] { common += 1 }
        let parts = Array(repeating: "..", count: from.count - common) + to[common...]
        return parts.map(encodePathComponent).joined(separator: "/")
    }

    /// Percent-encodes everything but unreserved characters (so `"`, `<`, `#`, `?`, `:` cannot change the link).
    static func encodePathComponent(_ s: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return s == ".." ? s : (s.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")
    }

    /// The URL when it is plain `http`/`https` (anything else, `javascript:` included, is shown as text only).
    static func safeWebURL(_ text: String?) -> String? {
        guard let text, let url = URL(string: text), let scheme = url.scheme?.lowercased(),
            scheme == "http" || scheme == "https", url.host != nil
        else { return nil }
        return text
    }

    static func fixed(_ d: Double?, _ digits: Int = 4) -> String {
        guard let d, d.isFinite else { return "–" }
        return String(format: "%.\(digits)f", d)
    }

    static func percent(_ n: Int, of total: Int) -> String {
        total == 0 ? "–" : String(format: "%.1f%%", 100 * Double(n) / Double(total))
    }

    static func duration(_ seconds: Double) -> String {
        if seconds < 90 { return String(format: "%.1f s", seconds) }
        if seconds < 5400 { return String(format: "%.1f min", seconds / 60) }
        return String(format: "%.1f h", seconds / 3600)
    }

    /// Writes a JPEG thumbnail (longer side at most `size`) of the image at `source` to `target`, unless it is
    /// there already. Returns false when the image cannot be read.
    static func thumbnail(of source: String, to target: URL, size: Int) -> Bool {
        if FileManager.default.fileExists(atPath: target.path) { return true }
        guard let image = try? RGBImage.load(contentsOf: URL(fileURLWithPath: source), maxPixels: 50_000_000) else {
            return false
        }
        var small = image
        let longer = max(image.width, image.height)
        if longer > size {
            let scale = Double(size) / Double(longer)
            let w = max(1, Int((Double(image.width) * scale).rounded()))
            let h = max(1, Int((Double(image.height) * scale).rounded()))
            guard let resized = try? Resample.bicubicPIL(image, width: w, height: h) else { return false }
            small = resized
        }
        guard let bytes = try? small.jpegData(quality: 88) else { return false }
        return (try? AtomicFile.write(Data(bytes), to: target)) != nil
    }

    /// An inline SVG histogram of `values` over [lo, hi] in `bins` bins with vertical threshold lines. Only
    /// numbers and fixed words go into the markup.
    static func histogram(
        _ values: [Double], lo: Double, hi: Double, bins: Int = 40, thresholds: [(label: String, value: Double)],
        title: String
    ) -> String {
        let width = 480.0
        let height = 160.0
        let left = 36.0
        let bottom = 24.0
        let plotW = width - left - 8
        let plotH = height - bottom - 18
        var counts = [Int](repeating: 0, count: bins)
        for v in values where v.isFinite {
            let t = (min(max(v, lo), hi) - lo) / (hi - lo)
            counts[min(bins - 1, Int(t * Double(bins)))] += 1
        }
        let top = max(counts.max() ?? 1, 1)
        var svg = """
            <svg xmlns="http://www.w3.org/2000/svg" class="hist" viewBox="0 0 \(Int(width)) \(Int(height))" \
            role="img" aria-label="\(title)">
            <text x="\(left)" y="12" class="ht">\(title) (n = \(values.count))</text>
            """
        let barW = plotW / Double(bins)
        for (i, c) in counts.enumerated() where c > 0 {
            let h = plotH * Double(c) / Double(top)
            svg += String(
                format:
                    "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" class=\"bar\"><title>%d</title></rect>",
                left + Double(i) * barW, 18 + plotH - h, max(barW - 1, 0.5), h, c)
        }
        svg += String(
            format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"axis\"/>", left, 18 + plotH,
            left + plotW, 18 + plotH)
        for tick in 0...4 {
            let v = lo + (hi - lo) * Double(tick) / 4
            svg += String(
                format: "<text x=\"%.1f\" y=\"%.1f\" class=\"tick\">%.2f</text>", left + plotW * Double(tick) / 4 - 10,
                height - 6, v)
        }
        svg += String(format: "<text x=\"4\" y=\"%.1f\" class=\"tick\">%d</text>", 26.0, top)
        for (label, value) in thresholds where value >= lo && value <= hi {
            let x = left + plotW * (value - lo) / (hi - lo)
            svg += String(
                format: "<line x1=\"%.1f\" y1=\"16\" x2=\"%.1f\" y2=\"%.1f\" class=\"thr\"/>", x, x, 18 + plotH)
            svg +=
                String(format: "<text x=\"%.1f\" y=\"28\" class=\"thrl\">", x - 4)
                + "\(label) \(String(format: "%.2f", value))</text>"
        }
        return svg + "</svg>"
    }
}
