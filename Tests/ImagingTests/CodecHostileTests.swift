import Foundation
import Imaging
import TestSupport
import Testing

/// Broken and malicious inputs (`Tests/Fixtures/images/hostile/`): each gives an `ImagingError` that
/// names the file, never a crash or a partial image.
struct CodecHostileTests {
    func loadError(_ relativePath: String, maxPixels: Int = RGBImage.defaultMaxPixels) -> ImagingError? {
        let url = Fixtures.url(relativePath)
        do {
            _ = try RGBImage.load(contentsOf: url, maxPixels: maxPixels)
            return nil
        } catch let error as ImagingError {
            #expect(error.file == url.path, "error should name the file: \(error)")
            return error
        } catch {
            Issue.record("unexpected error type: \(error)")
            return nil
        }
    }

    @Test func truncatedJPEG() throws {
        let error = try #require(loadError("images/hostile/truncated.jpg"))
        #expect(error.message.contains("Premature end of JPEG file"), "\(error)")
    }

    @Test func truncatedPNG() throws {
        let error = try #require(loadError("images/hostile/truncated.png"))
        #expect(error.message.contains("truncated"), "\(error)")
    }

    /// Every prefix of a small PNG and JPEG fails cleanly (no crash, no partial image).
    @Test(arguments: [
        "images/gray4.png", "images/interlaced_rgba16.png", "images/progressive.jpg",
        "images/cmyk.jpg",
    ])
    func everyTruncationFails(_ file: String) throws {
        let bytes = [UInt8](try Data(contentsOf: Fixtures.url(file)))
        let step = max(1, bytes.count / 150)
        var accepted: [Int] = []
        for length in stride(from: 0, to: bytes.count - 12, by: step) {
            if (try? RGBImage.decode(data: Array(bytes[..<length]), name: file)) != nil { accepted.append(length) }
        }
        #expect(accepted.isEmpty, "\(file): prefixes decoded: \(accepted)")
    }

    @Test func textFileIsNotAnImage() throws {
        let error = try #require(loadError("images/hostile/not_an_image.txt"))
        #expect(error.message == "not a PNG or JPEG image")
    }

    @Test func emptyFile() throws {
        let error = try #require(loadError("images/hostile/empty.png"))
        #expect(error.message.contains("empty"), "\(error)")
    }

    /// A 30000×30000 IHDR with nothing after it is refused by the pixel limit, from the header alone.
    @Test func hugeHeaderRefusedByPixelLimit() throws {
        let error = try #require(loadError("images/hostile/huge_header.png"))
        #expect(error.message.contains("30000×30000"), "\(error)")
        #expect(error.message.contains("pixel limit"), "\(error)")
        // With a large enough limit the header passes and the missing data is the error.
        let other = try #require(loadError("images/hostile/huge_header.png", maxPixels: 1_000_000_000))
        #expect(!other.message.contains("pixel limit"), "\(other)")
    }

    @Test func pixelLimitAppliesToJPEGToo() throws {
        let error = try #require(loadError("images/progressive.jpg", maxPixels: 80 * 128 - 1))
        #expect(error.message.contains("pixel limit"), "\(error)")
        #expect((try? RGBImage.load(contentsOf: Fixtures.url("images/progressive.jpg"), maxPixels: 80 * 128)) != nil)
    }

    @Test func missingFileNamesIt() throws {
        let error = try #require(loadError("images/does_not_exist.png"))
        #expect(error.message.contains("cannot read"), "\(error)")
    }

    /// A corrupted IDAT CRC and a corrupted JPEG marker are errors, not crashes.
    @Test func corruptedBytes() throws {
        var png = [UInt8](try Data(contentsOf: Fixtures.url("images/rgb.png")))
        png[png.count / 2] ^= 0xff
        #expect(throws: ImagingError.self) { try RGBImage.decode(data: png, name: "bad.png") }
        var jpeg = [UInt8](try Data(contentsOf: Fixtures.url("images/baseline420.jpg")))
        jpeg[3] = 0x00  // first marker's length/ID garbage
        jpeg[2] = 0xff
        jpeg[4...9] = [0xff, 0xc0, 0xff, 0xff, 0x00, 0x00]
        #expect(throws: ImagingError.self) { try RGBImage.decode(data: jpeg, name: "bad.jpg") }
    }
}
