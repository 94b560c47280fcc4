import AuditStore
import Foundation
import TestSupport
import Testing

@testable import Reports

/// The report rendered by a real browser (Debian's headless chromium): it loads without console messages, its
/// script runs under the page's Content-Security-Policy, every variation is shown, and markup planted in file
/// names, captions and URLs stays text.
struct ReportBrowserTests {
    static let hostileName = #"x"><img src=y onerror="document.title='pwned-name'">.png"#
    static let hostileCaption = #"<script>document.title='pwned-caption'</script>" onerror="document.title='q'"#

    /// A store with one run: two inputs (one with a hostile file name), three variations each, flags, concept
    /// scores and neighbours whose metadata holds markup and a `javascript:` URL.
    static func hostileStore(in dir: URL) throws -> AuditStore {
        let store = try AuditStore(url: dir.appendingPathComponent("audit.sqlite"))
        let run = try store.insertRun(
            RunRecord(
                fingerprint: "f", model: "/models/<b>m</b>", weights: #"{"unet": {"sha256": "ab", "file": "u"}}"#,
                parameters: #"{"variations": 3, "memorization_threshold": 0.95, "note": "<i>x</i>"}"#,
                toolVersion: "test", detectors: #"{"safety": {"used": true, "detail": "checker <u>c</u>"}}"#,
                startedAt: "2026-01-01T00:00:00Z", status: "done", seconds: 12)
        ).id!
        let images = dir.appendingPathComponent("images")
        try FileManager.default.createDirectory(at: images, withIntermediateDirectories: true)
        let hostileInput = images.appendingPathComponent(hostileName)
        try FileManager.default.copyItem(at: Fixtures.url("photos/coffee.png"), to: hostileInput)
        let inputs = [Fixtures.url("photos/chelsea.png").path, hostileInput.path]
        for (position, path) in inputs.enumerated() {
            let inputID = try store.saveInput(
                InputRecord(
                    runID: run, path: path, sha256: "\(position)abc", position: position, width: 10, height: 10,
                    safetyFlagged: false, specialCare: false, memorizationScore: 0.5, embedding: nil, seconds: 1),
                scores: [], neighbors: [], flags: [])
            for k in 0..<3 {
                let image = images.appendingPathComponent("v\(position)-\(k) \"q\".png")
                try FileManager.default.copyItem(at: Fixtures.url("safety/images/gradient.png"), to: image)
                let flags: [AuditFlag] = k == 0 ? [.unsafe, .memorized] : (k == 1 ? [.reproducesInput] : [])
                try store.saveVariation(
                    VariationRecord(
                        runID: run, inputID: inputID, k: k, seed: 0, imagePath: image.path,
                        imageSHA256: "s\(position)\(k)",
                        width: 8, height: 8, safetyFlagged: k == 0, specialCare: false,
                        memorizationScore: k == 0 ? 0.99 : 0.3, inputSimilarity: k == 1 ? 0.97 : 0.2, embedding: nil,
                        generationSeconds: 1, safetySeconds: 0, memorizationSeconds: 0, createdAt: "t"),
                    scores: [
                        ConceptScoreRecord(
                            inputID: 0, variationID: nil, kind: "concept", conceptIndex: 0,
                            name: "<svg onload=alert(1)>",
                            similarity: 0.3, threshold: 0.2, score: k == 0 ? 0.1 : -0.1, flagged: k == 0)
                    ],
                    neighbors: [
                        NeighborRecord(
                            inputID: 0, variationID: nil, rank: 0, rowID: 40 + k, cosine: 0.9,
                            metadata:
                                #"{"caption": "\#(hostileCaption.replacingOccurrences(of: "\"", with: "\\\""))", "#
                                + #""url": "javascript:document.title='pwned-url'"}"#, duplicateGroup: 0)
                    ], flags: flags)
            }
        }
        try store.recordError(
            run: run, input: "/in/<b>bad</b>.png", stage: "read", message: "<script>x</script>", at: "t")
        return store
    }

    @Test func reportRendersEveryVariationAndPlantedMarkupStaysText() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try Self.hostileStore(in: dir)
        let out = dir.appendingPathComponent("report")
        let page = try AuditReport().write(store: store, to: out)
        let html = try String(contentsOf: page, encoding: .utf8)
        // The markup is escaped in the file itself.
        #expect(!html.contains("<script>document.title"))
        #expect(!html.contains("<img src=y"))
        #expect(!html.contains("href=\"javascript:"))  // shown as text, never as a link
        #expect(html.contains("&lt;script&gt;document.title="))
        #expect(html.components(separatedBy: "<figure class=\"card").count - 1 == 6)
        // Every local image it shows exists (no request can fail), and nothing points off the machine.
        let sources = html.components(separatedBy: "src=\"").dropFirst().map { String($0.prefix { $0 != "\"" }) }
        #expect(sources.count >= 8)
        for src in sources {
            let path = out.appendingPathComponent(src.removingPercentEncoding ?? src).path
            #expect(FileManager.default.fileExists(atPath: path), "\(src)")
        }
        #expect(!html.contains("http://") && !html.contains("https://") || html.contains("xmlns=\"http://www.w3.org"))

        let (dom, console) = try Browser.render(page)
        #expect(console.isEmpty, "\(console)")
        #expect(dom.contains("<title>varaudit report · run 1</title>"))
        #expect(!dom.contains("<title>pwned"))
        #expect(!dom.contains("href=\"javascript:"))
        #expect(dom.contains("data-ready=\"1\""), "the page's script did not run")
        #expect(dom.contains("data-visible-cards=\"6\""))
        #expect(dom.contains("6 of 6 variations shown"))
        #expect(dom.contains("&lt;script&gt;document.title='pwned-caption'&lt;/script&gt;"))
    }

    @Test func relativeLinksAndURLsAreSafe() {
        #expect(
            ReportSupport.relativeLink(to: "/a/b/img x.png", from: URL(fileURLWithPath: "/a/c/report"))
                == "../../b/img%20x.png")
        #expect(
            ReportSupport.relativeLink(to: "/a/c/report/thumbs/t.jpg", from: URL(fileURLWithPath: "/a/c/report"))
                == "thumbs/t.jpg")
        #expect(ReportSupport.safeWebURL("https://example.com/x.jpg") == "https://example.com/x.jpg")
        #expect(ReportSupport.safeWebURL("javascript:alert(1)") == nil)
        #expect(ReportSupport.safeWebURL("JaVaScRiPt:alert(1)") == nil)
        #expect(ReportSupport.safeWebURL("data:text/html,x") == nil)
    }
}
