import Foundation
import Imaging
import TestSupport
import Testing

/// Encoding: PNG round trips exactly and carries text chunks; JPEG round trips within a stated tolerance.
struct CodecEncodeTests {
    @Test func pngRoundTripIsExact() throws {
        let image = try codecTestImage(width: 67, height: 41)
        let bytes = try image.pngData()
        #expect(ImageFormat.detect(bytes) == .png)
        #expect(try RGBImage.decode(data: bytes, name: "roundtrip.png") == image)
        let photo = try RGBImage.load(contentsOf: Fixtures.url("photos/chelsea.png"))
        #expect(try RGBImage.decode(data: photo.pngData(), name: "chelsea") == photo)
    }

    @Test func pngTextRoundTrip() throws {
        let image = try codecTestImage(width: 8, height: 5)
        let text = [
            ("varaudit.manifest", #"{"seed": 42, "steps": 50}"#),
            ("Latin1", "café\nsecond line"),
            ("Unicode", "猫 ✓ emoji 🐈"),
            ("Empty", ""),
        ]
        let bytes = try image.pngData(text: text)
        let entries = try readPNGTextEntries(data: bytes, name: "t.png")
        #expect(entries.map(\.key) == text.map(\.0))
        #expect(entries.map(\.value) == text.map(\.1))
        #expect(try RGBImage.decode(data: bytes, name: "t.png") == image)
    }

    /// Pillow-written tEXt, zTXt, iTXt (plain and compressed), and a tEXt after IDAT are all read.
    @Test func readsPillowTextChunks() throws {
        let expected = try CodecManifest.load().text
        #expect(expected.count == 6)
        #expect(try readPNGText(Fixtures.url("images/text.png")) == expected)
        #expect(try readPNGText(Fixtures.url("images/rgb.png")).isEmpty)
    }

    @Test func textReaderRejectsNonPNG() throws {
        #expect(throws: ImagingError.self) { try readPNGText(Fixtures.url("images/gray.jpg")) }
        #expect(throws: ImagingError.self) { try readPNGText(Fixtures.url("images/hostile/truncated.png")) }
    }

    @Test func invalidTextKeysAreRefused() throws {
        let image = try codecTestImage(width: 2, height: 2)
        for key in ["", String(repeating: "k", count: 80), " lead", "trail ", "dou  ble", "tab\t", "猫"] {
            #expect(throws: ImagingError.self, "key \(key.debugDescription)") {
                try image.pngData(text: [(key, "v")])
            }
        }
        #expect(throws: ImagingError.self) { try image.pngData(text: [("Key", "nul\0inside")]) }
        _ = try image.pngData(text: [(String(repeating: "k", count: 79), "ok")])
    }

    /// JPEG at quality 95 on coffee.png: same size, mean absolute error ≤ 2.5 levels, max ≤ 64. (Pillow's
    /// own quality-95 round trip of this photo, same 4:2:0 settings, gives mean 2.29 and max 59: the
    /// maximum comes from subsampled chroma at sharp red edges.)
    @Test func jpegRoundTripWithinTolerance() throws {
        let image = try RGBImage.load(contentsOf: Fixtures.url("photos/coffee.png"))
        let bytes = try image.jpegData(quality: 95)
        #expect(ImageFormat.detect(bytes) == .jpeg)
        let decoded = try RGBImage.decode(data: bytes, name: "coffee.jpg")
        #expect(decoded.width == image.width && decoded.height == image.height)
        var total = 0
        var worst = 0
        for (a, b) in zip(decoded.pixels, image.pixels) {
            let d = abs(Int(a) - Int(b))
            total += d
            worst = max(worst, d)
        }
        let mean = Double(total) / Double(image.pixels.count)
        #expect(mean <= 2.5, "mean abs error \(mean)")
        #expect(worst <= 64, "max abs error \(worst)")
        let small = try image.jpegData(quality: 20)
        #expect(small.count < bytes.count)
    }

    @Test func jpegQualityIsChecked() throws {
        let image = try codecTestImage(width: 4, height: 4)
        #expect(throws: ImagingError.self) { try image.jpegData(quality: 0) }
        #expect(throws: ImagingError.self) { try image.jpegData(quality: 101) }
    }

    /// Odd sizes (1×1, 1×N, N×1) encode and decode in both formats.
    @Test(arguments: [(1, 1), (1, 17), (23, 1), (9, 16)])
    func tinySizes(_ size: (Int, Int)) throws {
        let image = try codecTestImage(width: size.0, height: size.1)
        #expect(try RGBImage.decode(data: image.pngData(), name: "tiny.png") == image)
        let jpeg = try RGBImage.decode(data: image.jpegData(quality: 90), name: "tiny.jpg")
        #expect(jpeg.width == size.0 && jpeg.height == size.1)
    }

    @Test func writeThenLoad() throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("codec-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let image = try codecTestImage(width: 30, height: 20)
        let png = directory.appendingPathComponent("a.png")
        try image.write(to: png, format: .png, text: [("Software", "varaudit")])
        #expect(try RGBImage.load(contentsOf: png) == image)
        #expect(try readPNGText(png) == ["Software": "varaudit"])
        let jpeg = directory.appendingPathComponent("a.jpg")
        try image.write(to: jpeg, format: .jpeg, quality: 90)
        #expect(try ImageInfo.probe(data: [UInt8](Data(contentsOf: jpeg)), name: "a.jpg").format == .jpeg)
        let missing = directory.appendingPathComponent("no/such/dir/b.png")
        do {
            try image.write(to: missing, format: .png)
            Issue.record("writing into a missing directory should fail")
        } catch let error as ImagingError {
            #expect(error.file == missing.path)
        }
    }
}
