/// An 8-bit RGB image, row-major, interleaved (`[R, G, B, R, G, B, ...]`, top row first).
public struct RGBImage: Sendable, Equatable {
    /// Width in pixels.
    public let width: Int
    /// Height in pixels.
    public let height: Int
    /// `width × height × 3` bytes.
    public var pixels: [UInt8]

    /// An image over `pixels`; the count must be `width × height × 3`.
    public init(width: Int, height: Int, pixels: [UInt8]) throws {
        guard width > 0, height > 0, pixels.count == width * height * 3 else {
            throw ImagingError(
                "RGBImage: \(width)×\(height) needs \(max(width * height * 3, 0)) bytes, got \(pixels.count)")
        }
        self.width = width
        self.height = height
        self.pixels = pixels
    }
}
