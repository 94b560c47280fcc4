import Checkpoints
import Imaging
import Tensors
import TestSupport
import Testing

/// Both CLIP-input preprocessings against the references on real photographs
/// (`tools/fixtures/make_preprocess.py`: torchvision for `seed`, transformers 5 and Pillow for `clip`).
struct PreprocessingTests {
    static let photos = ["chelsea.png", "coffee.png", "rocket.jpg"]

    func load(_ photo: String) throws -> (RGBImage, SafeTensorsFile) {
        let image = try RGBImage.load(contentsOf: Fixtures.url("photos/\(photo)"))
        let stem = photo.split(separator: ".")[0]
        return (image, try Fixtures.tensors("preprocess/\(stem).safetensors"))
    }

    /// Seed recipe (bicubic without antialiasing) vs torchvision: max abs error ≤ 1e-5.
    @Test(arguments: photos)
    func seedMatchesTorchvision(_ photo: String) throws {
        let (image, ref) = try load(photo)
        for size in [224, 40] {
            let ours = try Preprocess.seed(image, size: size)
            let expected = try ref.tensor(named: "seed_\(size)")
            #expect(ours.shape == [3, size, size])
            #expect(maxAbsDifference(ours.scalars, expected.scalars) <= 1e-5, "\(photo) at \(size)")
        }
    }

    /// The 8-bit resize and crop equal Pillow's `resize(BICUBIC)` + centre crop bit for bit.
    @Test(arguments: photos)
    func clipResizeEqualsPillow(_ photo: String) throws {
        let (image, ref) = try load(photo)
        let cropped = try Preprocess.resizeAndCrop(image, settings: CLIPProcessorSettings())
        let expected = try ref.tensor(named: "clip_pil_u8").scalars.map { UInt8($0) }
        #expect(cropped.width == 224 && cropped.height == 224)
        #expect(cropped.pixels == expected)
    }

    /// Full `clip` preprocessing vs transformers 5's CLIPImageProcessor (torchvision backend): within one
    /// 8-bit level everywhere (the two uint8 antialiased resizers differ by ≤ 1 level), equal almost everywhere.
    @Test(arguments: photos)
    func clipWithinOneLevelOfTransformers(_ photo: String) throws {
        let (image, ref) = try load(photo)
        var small = CLIPProcessorSettings()
        small.shortestEdge = 48
        small.cropHeight = 40
        small.cropWidth = 80  // wider than the resized image: zero padding
        for (settings, key) in [(CLIPProcessorSettings(), "clip_224"), (small, "clip_small")] {
            let ours = try Preprocess.clip(image, settings: settings)
            let expected = try ref.tensor(named: key)
            #expect(ours.shape == expected.shape, "\(photo) \(key)")
            let levels = levelDifferences(ours, expected, std: settings.std)
            #expect(levels.max <= 1.001, "\(photo) \(key): \(levels.max) levels")
            #expect(levels.fractionDifferent < 0.05, "\(photo) \(key): \(levels.fractionDifferent) of values differ")
        }
    }

    @Test func resizedSizeTruncatesLongSide() throws {
        let portrait = try RGBImage(width: 3, height: 7, pixels: [UInt8](repeating: 0, count: 63))
        var s = CLIPProcessorSettings()
        s.shortestEdge = 10
        let (h, w) = try Preprocess.resizedSize(of: portrait, settings: s)
        #expect(w == 10 && h == 23)  // int(10 * 7 / 3) = 23
    }

    @Test func badStatisticsAreRefused() throws {
        let image = try RGBImage(width: 2, height: 2, pixels: [UInt8](repeating: 9, count: 12))
        #expect(throws: ImagingError.self) { try Preprocess.seed(image, size: 4, mean: [0.5], std: [0.5]) }
        var s = CLIPProcessorSettings()
        s.std = [0, 1, 1]
        #expect(throws: ImagingError.self) { try Preprocess.clip(image, settings: s) }
    }

    /// Per-element difference in 8-bit levels (normalized difference × 255 × std of the channel).
    func levelDifferences(_ a: Tensor, _ b: Tensor, std: [Float]) -> (max: Float, fractionDifferent: Double) {
        let (x, y) = (a.scalars, b.scalars)
        guard x.count == y.count, !x.isEmpty else { return (.infinity, 1) }
        let plane = x.count / 3
        var worst: Float = 0
        var different = 0
        for i in x.indices {
            let d = abs(x[i] - y[i]) * 255 * std[i / plane]
            worst = max(worst, d)
            if d > 0.01 { different += 1 }
        }
        return (worst, Double(different) / Double(x.count))
    }
}
