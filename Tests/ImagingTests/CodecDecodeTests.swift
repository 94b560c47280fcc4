import Foundation
import Imaging
import TestSupport
import Testing

/// Decoding equals Pillow 13's `Image.open(f).convert("RGB")` bit for bit (tolerance 0) for every PNG
/// layout and JPEG variant in `Tests/Fixtures/images/` (`tools/fixtures/make_images.py`). JPEG is exact too:
/// both sides are libjpeg-turbo with islow DCT and fancy upsampling.
struct CodecDecodeTests {
    @Test func manifestLists21Cases() throws {
        let manifest = try CodecManifest.load()
        #expect(manifest.cases.count == 21)
        #expect(CodecManifest.caseFiles.count == manifest.cases.count)
    }

    @Test(arguments: CodecManifest.caseFiles)
    func decodeEqualsPillow(_ file: String) throws {
        let manifest = try CodecManifest.load()
        let entry = try #require(manifest.cases.first { $0.file == file })
        let image = try RGBImage.load(contentsOf: Fixtures.url("images/\(file)"))
        let expected = [UInt8](try Data(contentsOf: Fixtures.url("images/\(entry.expected)")))
        #expect(image.width == entry.width && image.height == entry.height, "\(file)")
        #expect(image.pixels.count == expected.count, "\(file)")
        let mismatches = zip(image.pixels, expected).filter { $0 != $1 }.count
        #expect(mismatches == 0, "\(file) (Pillow mode \(entry.mode)): \(mismatches) bytes differ")
    }

    /// The full photographs hash equal to Pillow's decode (the lead's preprocessing tests start from these).
    @Test(arguments: ["chelsea.png", "coffee.png", "rocket.jpg"])
    func photoDecodeEqualsPillow(_ photo: String) throws {
        let reference = try #require(try CodecManifest.load().photos[photo])
        let image = try RGBImage.load(contentsOf: Fixtures.url("photos/\(photo)"))
        #expect(image.width == reference.width && image.height == reference.height)
        #expect(fnv1a64(image.pixels) == reference.fnv1a64)
    }

    /// The format comes from the magic bytes, not the name.
    @Test func formatFromMagicBytesNotExtension() throws {
        let png = [UInt8](try Data(contentsOf: Fixtures.url("images/rgb.png")))
        let jpeg = [UInt8](try Data(contentsOf: Fixtures.url("images/gray.jpg")))
        #expect(ImageFormat.detect(png) == .png)
        #expect(ImageFormat.detect(jpeg) == .jpeg)
        #expect(ImageFormat.detect(Array("GIF89a".utf8)) == nil)
        let fromPNG = try RGBImage.decode(data: png, name: "misnamed.jpg")
        #expect(fromPNG == (try RGBImage.load(contentsOf: Fixtures.url("images/rgb.png"))))
        let fromJPEG = try RGBImage.decode(data: Data(jpeg), name: "misnamed.png")
        #expect(fromJPEG.width == 96 && fromJPEG.height == 80)
    }

    @Test func probeReadsHeaderOnly() throws {
        let png = [UInt8](try Data(contentsOf: Fixtures.url("images/interlaced.png")))
        #expect(try ImageInfo.probe(data: png, name: "a") == ImageInfo(format: .png, width: 80, height: 128))
        let jpeg = [UInt8](try Data(contentsOf: Fixtures.url("images/progressive.jpg")))
        #expect(try ImageInfo.probe(data: jpeg, name: "b") == ImageInfo(format: .jpeg, width: 80, height: 128))
    }
}
