import Foundation
import Imaging
import TestSupport

/// `Tests/Fixtures/images/manifest.json`, written by `tools/fixtures/make_images.py`.
struct CodecManifest: Decodable {
    struct Case: Decodable {
        let file: String
        let expected: String
        let width: Int
        let height: Int
        let mode: String
    }

    struct Photo: Decodable {
        let width: Int
        let height: Int
        let fnv1a64: String
    }

    let cases: [Case]
    let text: [String: String]
    let photos: [String: Photo]

    static func load() throws -> CodecManifest {
        let data = try Data(contentsOf: Fixtures.url("images/manifest.json"))
        return try JSONDecoder().decode(CodecManifest.self, from: data)
    }

    /// Case file names for parameterized tests (empty if the manifest is unreadable; a test checks that).
    static let caseFiles: [String] = (try? load().cases.map(\.file)) ?? []
}

/// FNV-1a, 64-bit, as hex: matches `fnv1a64` in `tools/fixtures/make_images.py`.
func fnv1a64(_ bytes: [UInt8]) -> String {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in bytes {
        hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
    }
    let hex = String(hash, radix: 16)
    return String(repeating: "0", count: 16 - hex.count) + hex
}

/// A deterministic test image with smooth gradients and some texture.
func codecTestImage(width: Int, height: Int) throws -> RGBImage {
    var pixels = [UInt8](repeating: 0, count: width * height * 3)
    for y in 0..<height {
        for x in 0..<width {
            let i = (y * width + x) * 3
            pixels[i] = UInt8(x * 255 / max(width - 1, 1))
            pixels[i + 1] = UInt8(y * 255 / max(height - 1, 1))
            pixels[i + 2] = UInt8((x * 7 + y * 13) % 64 + 96)
        }
    }
    return try RGBImage(width: width, height: height, pixels: pixels)
}
