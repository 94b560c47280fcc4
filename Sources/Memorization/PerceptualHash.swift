import Foundation
import Imaging

/// A 64-bit DCT perceptual hash (pHash), a model-free copy descriptor compared by Hamming distance.
///
/// Exactly:
/// 1. Resize the RGB image to 32×32 with `Resample.bicubicPIL` (Pillow's antialiased BICUBIC; the aspect
///    ratio is not kept).
/// 2. Gray `Y = 0.299 R + 0.587 G + 0.114 B` (ITU-R 601 luma as Pillow's `convert("L")`, in float, not
///    rounded).
/// 3. 2-D DCT-II, `F(u, v) = Σ_y Σ_x Y(y, x) cos(π(2y+1)u/64) cos(π(2x+1)v/64)` (the scale is irrelevant).
/// 4. Keep the top-left 8×8 block `u, v ∈ 0…7` (the lowest frequencies, as imagehash's `phash`).
/// 5. `m` = median of its 63 coefficients other than DC `F(0, 0)` (the 32nd smallest), so the image's mean
///    brightness does not move the threshold; bit `8u + v` of the hash (bit 0 = least significant) is 1 when
///    `F(u, v) > m`. The DC bit is therefore 1 for any image that is not black, and a hash has 32 bits set
///    (when the coefficients are distinct), so distances are even.
///
/// Robustness, measured on the fixture photographs (MemorizationTests): JPEG re-encoding ≤ 4 bits, ½×
/// resizing ≤ 2, a centred 5 % crop ≤ 12; a 5 % crop off one side only can reach 20 (a global DCT hash follows
/// the framing). Codes go to faiss's binary indices as the hash's 8 little-endian bytes.
public enum PerceptualHash {
    /// Hamming radius within which two hashes are taken as copies: 14 of 64 bits (MemorizationTests: every
    /// re-encoded, ½×-resized and centred-5 %-cropped copy found, ~0.1 % of 10k distractors within it).
    public static let defaultMatchDistance = 14

    /// The hash of an image.
    public static func hash(_ image: RGBImage) throws -> UInt64 {
        let small = try Resample.bicubicPIL(image, width: 32, height: 32)
        var gray = [Float](repeating: 0, count: 32 * 32)
        for i in 0..<(32 * 32) {
            let r = Float(small.pixels[3 * i])
            let g = Float(small.pixels[3 * i + 1])
            let b = Float(small.pixels[3 * i + 2])
            gray[i] = 0.299 * r + 0.587 * g + 0.114 * b
        }
        // Rows u = 0…7 of the 1-D DCT along y, then along x: T = C·Y (8 × 32), F = T·Cᵀ (8 × 8).
        let c = cosineTable
        var t = [Float](repeating: 0, count: 8 * 32)
        for u in 0..<8 {
            for x in 0..<32 {
                var s: Float = 0
                for y in 0..<32 { s += c[u * 32 + y] * gray[y * 32 + x] }
                t[u * 32 + x] = s
            }
        }
        var coefficients = [Float](repeating: 0, count: 64)
        for u in 0..<8 {
            for v in 0..<8 {
                var s: Float = 0
                for x in 0..<32 { s += t[u * 32 + x] * c[v * 32 + x] }
                coefficients[u * 8 + v] = s
            }
        }
        let median = coefficients[1...].sorted()[31]
        var hash: UInt64 = 0
        for i in 0..<64 where coefficients[i] > median { hash |= 1 << UInt64(i) }
        return hash
    }

    /// The hash of an image file; errors name the file.
    public static func hash(contentsOf url: URL) throws -> UInt64 {
        try hash(RGBImage.load(contentsOf: url))
    }

    /// Number of differing bits.
    public static func distance(_ a: UInt64, _ b: UInt64) -> Int { (a ^ b).nonzeroBitCount }

    /// `cos(π(2y+1)u/64)` for u in 0..<8, y in 0..<32.
    private static let cosineTable: [Float] = (0..<(8 * 32)).map { i in
        let u = Double(i / 32)
        let y = Double(i % 32)
        return Float(cos(Double.pi * (2 * y + 1) * u / 64))
    }

    /// The 8 little-endian bytes faiss's binary indices take.
    static func bytes(_ hashes: [UInt64]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(hashes.count * 8)
        for h in hashes { withUnsafeBytes(of: h.littleEndian) { out.append(contentsOf: $0) } }
        return out
    }
}

/// Perceptual hashes of training images in a faiss `IndexBinaryFlat` (exact Hamming search).
public final class PerceptualHashIndex: @unchecked Sendable {
    /// The binary index (64-bit codes).
    public let index: FaissBinaryIndex

    /// An empty index.
    public init() throws { index = try FaissBinaryIndex(bits: 64) }

    /// Reads an index written by `write(to:)` (or `faiss.write_index_binary`); must hold 64-bit codes.
    public init(contentsOf url: URL) throws {
        index = try FaissBinaryIndex(contentsOf: url)
        guard index.bits == 64 else {
            throw MemorizationError(file: url.path, "holds \(index.bits)-bit codes, not 64-bit perceptual hashes")
        }
    }

    /// Number of stored hashes; ids are `0..<count` in insertion order.
    public var count: Int { index.count }

    /// Appends hashes.
    public func add(_ hashes: [UInt64]) throws { try index.add(PerceptualHash.bytes(hashes)) }

    /// Writes with `faiss.write_index_binary`.
    public func write(to url: URL) throws { try index.write(to: url) }

    /// The `k` nearest stored hashes of each query (ascending Hamming distance).
    public func search(_ hashes: [UInt64], k: Int) throws -> [[(id: Int, distance: Int)]] {
        try index.search(PerceptualHash.bytes(hashes), k: min(k, max(count, 1)))
    }

    /// Stored hashes within `radius` bits of each query (searching the `k` nearest).
    public func matches(_ hashes: [UInt64], radius: Int = PerceptualHash.defaultMatchDistance, k: Int = 100) throws
        -> [[(id: Int, distance: Int)]]
    {
        try search(hashes, k: k).map { $0.filter { $0.distance <= radius } }
    }
}
