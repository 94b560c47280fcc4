import Checkpoints
import Tensors

/// Mean and standard deviation OpenAI's CLIP normalizes with (per RGB channel).
public enum CLIPNormalization {
    public static let mean: [Float] = [0.48145466, 0.4578275, 0.40821073]
    public static let std: [Float] = [0.26862954, 0.26130258, 0.27577711]
}

/// Which of the two CLIP-input preprocessings to run.
public enum PreprocessMode: String, Sendable, CaseIterable {
    /// The model card's recipe (our default): squash to `size × size` with bicubic **without** antialiasing.
    case seed
    /// transformers' `CLIPImageProcessor`: shortest-edge bicubic resize with antialiasing, centre crop.
    case clip
}

/// Settings of transformers' `CLIPImageProcessor` (from a `preprocessor_config.json`); the defaults are those
/// of the lambdalabs model's `feature_extractor`.
public struct CLIPProcessorSettings: Sendable, Equatable {
    /// Resize so the short edge is this long (`size.shortest_edge`); `nil` with `resizeTo` for a fixed size.
    public var shortestEdge: Int? = 224
    /// Fixed `(height, width)` resize (`size: {height, width}`), used when `shortestEdge` is `nil`.
    public var resizeTo: (height: Int, width: Int)? = nil
    /// Whether to resize at all (`do_resize`).
    public var doResize = true
    /// Centre-crop size (`crop_size`), applied when `doCenterCrop`.
    public var cropHeight = 224
    public var cropWidth = 224
    /// `do_center_crop`.
    public var doCenterCrop = true
    /// `do_rescale` and `rescale_factor`.
    public var doRescale = true
    public var rescaleFactor: Double = 1.0 / 255
    /// `do_normalize`, `image_mean`, `image_std`.
    public var doNormalize = true
    public var mean: [Float] = CLIPNormalization.mean
    public var std: [Float] = CLIPNormalization.std

    public init() {}

    public static func == (l: Self, r: Self) -> Bool {
        l.shortestEdge == r.shortestEdge && l.resizeTo?.height == r.resizeTo?.height
            && l.resizeTo?.width == r.resizeTo?.width && l.doResize == r.doResize && l.cropHeight == r.cropHeight
            && l.cropWidth == r.cropWidth && l.doCenterCrop == r.doCenterCrop && l.doRescale == r.doRescale
            && l.rescaleFactor == r.rescaleFactor && l.doNormalize == r.doNormalize && l.mean == r.mean
            && l.std == r.std
    }
}

/// The two preprocessings that turn an RGB image into a CLIP vision encoder's `[3, H, W]` input.
public enum Preprocess {
    /// The model card's tensor recipe (docs/algorithms.md#seed-preprocessing): `ToTensor()` (x/255), then
    /// `Resize((size, size), BICUBIC, antialias=False)` — aspect ratio not preserved, no crop — then
    /// `Normalize(mean, std)`. Matches torchvision on float tensors to ~1e-7.
    public static func seed(
        _ image: RGBImage, size: Int, mean: [Float] = CLIPNormalization.mean, std: [Float] = CLIPNormalization.std
    ) throws -> Tensor {
        try checkStatistics(mean, std)
        let plane = image.width * image.height
        var chw = [Float](repeating: 0, count: 3 * plane)
        for i in 0..<plane {
            for c in 0..<3 { chw[c * plane + i] = Float(image.pixels[i * 3 + c]) / 255 }
        }
        let x = try Tensor(shape: [3, image.height, image.width], values: chw)
        var out = try Resample.bicubicTorch(x, height: size, width: size)
        let area = size * size
        out.withUnsafeMutableBufferPointer { p in
            for c in 0..<3 {
                for i in 0..<area { p[c * area + i] = (p[c * area + i] - mean[c]) / std[c] }
            }
        }
        return out
    }

    /// transformers' `CLIPImageProcessor`: shortest-edge resize with PIL's antialiased
    /// bicubic on 8-bit pixels, centre crop (zero padding when the image is smaller), rescale and
    /// normalize fused as `(x − 255·mean) / (255·std)`. Equal to transformers ≤ 4 (PIL) bit for bit before
    /// normalization and within one 8-bit level of transformers ≥ 5 (torchvision backend).
    /// See docs/algorithms.md#clip-preprocessing.
    public static func clip(_ image: RGBImage, settings: CLIPProcessorSettings = .init()) throws -> Tensor {
        try checkStatistics(settings.mean, settings.std)
        let img = try resizeAndCrop(image, settings: settings)
        let area = img.width * img.height
        var values = [Float](repeating: 0, count: 3 * area)
        // transformers fuses rescale into normalize: mean and std scaled by f32(1 / rescale_factor).
        let inverse = Float(1.0 / (settings.doRescale ? settings.rescaleFactor : 1))
        for c in 0..<3 {
            let m = settings.doNormalize ? settings.mean[c] * inverse : 0
            let s = settings.doNormalize ? settings.std[c] * inverse : inverse
            for i in 0..<area { values[c * area + i] = (Float(img.pixels[i * 3 + c]) - m) / s }
        }
        return try Tensor(shape: [3, img.height, img.width], values: values)
    }

    /// The 8-bit part of `clip`: PIL bicubic resize, then the centre crop (zero padding where the crop window
    /// is larger than the image, placed as transformers pads: `(crop − size) // 2` before).
    public static func resizeAndCrop(_ image: RGBImage, settings: CLIPProcessorSettings) throws -> RGBImage {
        var img = image
        if settings.doResize {
            let (h, w) = try resizedSize(of: image, settings: settings)
            img = try Resample.bicubicPIL(image, width: w, height: h)
        }
        guard settings.doCenterCrop else { return img }
        let (oh, ow) = (settings.cropHeight, settings.cropWidth)
        guard oh > 0, ow > 0 else {
            throw ImagingError("clip preprocessing: crop size \(oh)×\(ow) must be positive")
        }
        // Offset of the crop window in the resized image; negative when the window is larger (padding).
        let top = Int((Double(img.height - oh) / 2).rounded(.towardZero))
        let left = Int((Double(img.width - ow) / 2).rounded(.towardZero))
        var pixels = [UInt8](repeating: 0, count: oh * ow * 3)
        for y in 0..<oh {
            let sy = y + top
            guard sy >= 0, sy < img.height else { continue }
            for x in 0..<ow {
                let sx = x + left
                guard sx >= 0, sx < img.width else { continue }
                for c in 0..<3 { pixels[(y * ow + x) * 3 + c] = img.pixels[(sy * img.width + sx) * 3 + c] }
            }
        }
        return try RGBImage(width: ow, height: oh, pixels: pixels)
    }

    /// Output size of the resize step: `(height, width)`. With `shortestEdge` S the short side becomes S and the
    /// long side `int(S · long / short)` (truncated), as transformers' `get_resize_output_image_size`.
    public static func resizedSize(of image: RGBImage, settings: CLIPProcessorSettings) throws -> (Int, Int) {
        if let s = settings.shortestEdge {
            guard s > 0 else { throw ImagingError("clip preprocessing: shortest_edge \(s) must be positive") }
            let (short, long) = image.width <= image.height ? (image.width, image.height) : (image.height, image.width)
            let newLong = Int(Double(s) * Double(long) / Double(short))
            return image.width <= image.height ? (newLong, s) : (s, newLong)
        }
        if let fixed = settings.resizeTo, fixed.height > 0, fixed.width > 0 { return (fixed.height, fixed.width) }
        throw ImagingError("clip preprocessing: `size` needs shortest_edge or height and width")
    }

    private static func checkStatistics(_ mean: [Float], _ std: [Float]) throws {
        guard mean.count == 3, std.count == 3, std.allSatisfy({ $0 > 0 }) else {
            throw ImagingError(
                "preprocessing: image_mean and image_std need 3 values with std > 0, got \(mean) and \(std)")
        }
    }
}

extension CLIPProcessorSettings {
    /// The settings of a transformers `preprocessor_config.json`.
    public init(_ config: CLIPPreprocessorConfig) {
        self.init()
        doResize = config.doResize
        switch config.size {
        case .shortestEdge(let n):
            shortestEdge = n
            resizeTo = nil
        case .exact(let h, let w):
            shortestEdge = nil
            resizeTo = (h, w)
        }
        doCenterCrop = config.doCenterCrop
        cropHeight = config.cropSize.height
        cropWidth = config.cropSize.width
        doRescale = config.doRescale
        rescaleFactor = config.rescaleFactor
        doNormalize = config.doNormalize
        mean = config.imageMean.map { Float($0) }
        std = config.imageStd.map { Float($0) }
    }

    /// transformers' defaults for an encoder of input side `size`: shortest edge and crop both `size`.
    public static func square(_ size: Int) -> CLIPProcessorSettings {
        var s = CLIPProcessorSettings()
        s.shortestEdge = size
        s.cropHeight = size
        s.cropWidth = size
        return s
    }
}
