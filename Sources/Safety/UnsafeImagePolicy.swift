import Imaging

/// What to do with an image the checker flags (`--on-unsafe`).
public enum UnsafeImagePolicy: String, Sendable, CaseIterable {
    /// Replace it with black (all zeros), as diffusers does.
    case black
    /// Blur it beyond recognition (a Gaussian of σ = longer side / 16, as three box blurs per axis).
    case blur
    /// Keep it unchanged (the verdict is still recorded).
    case keep

    /// `image` after the policy, if `verdict` flags it; unflagged images are returned unchanged.
    public func apply(to image: RGBImage, verdict: SafetyVerdict) -> RGBImage {
        verdict.flagged ? apply(to: image) : image
    }

    /// `image` after the policy, unconditionally.
    public func apply(to image: RGBImage) -> RGBImage {
        switch self {
        case .keep: return image
        case .black:
            var out = image
            out.pixels = [UInt8](repeating: 0, count: image.pixels.count)
            return out
        case .blur:
            return Self.blurred(image, sigma: Double(max(image.width, image.height)) / 16)
        }
    }

    /// Three box blurs per axis approximating a Gaussian of `sigma` (edges clamped).
    static func blurred(_ image: RGBImage, sigma: Double) -> RGBImage {
        let (w, h) = (image.width, image.height)
        guard w > 0, h > 0, sigma > 0 else { return image }
        // Box width for three passes: sqrt(12σ²/3 + 1).
        let radius = max(1, Int(((12 * sigma * sigma / 3 + 1).squareRoot() - 1) / 2))
        var plane = image.pixels.map { Float($0) }
        var tmp = plane
        func pass(along horizontal: Bool) {
            let (lines, length) = horizontal ? (h, w) : (w, h)
            let norm = 1 / Float(2 * radius + 1)
            for line in 0..<lines {
                for c in 0..<3 {
                    func at(_ i: Int) -> Int {
                        let j = min(max(i, 0), length - 1)
                        return (horizontal ? line * w + j : j * w + line) * 3 + c
                    }
                    var sum: Float = 0
                    for i in -radius...radius { sum += plane[at(i)] }
                    for i in 0..<length {
                        tmp[at(i)] = sum * norm
                        sum += plane[at(i + radius + 1)] - plane[at(i - radius)]
                    }
                }
            }
            swap(&plane, &tmp)
        }
        for _ in 0..<3 { pass(along: true) }
        for _ in 0..<3 { pass(along: false) }
        var out = image
        out.pixels = plane.map { UInt8(min(max($0.rounded(), 0), 255)) }
        return out
    }
}
