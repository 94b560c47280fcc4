import Foundation

/// transformers CLIP image processor config (`feature_extractor/preprocessor_config.json`), old
/// (`CLIPFeatureExtractor`, integer sizes) and new (`CLIPImageProcessor`, dict sizes) alike.
public struct CLIPPreprocessorConfig: CheckpointConfig, Equatable {
    /// How `size` resizes.
    public enum Resize: Codable, Equatable, Sendable {
        /// Scale so the shorter side has this length (an integer `size`, or `{"shortest_edge": n}`).
        case shortestEdge(Int)
        /// Scale to exactly this size (`{"height": h, "width": w}`).
        case exact(height: Int, width: Int)

        public init(from decoder: any Decoder) throws {
            if let n = try? decoder.singleValueContainer().decode(Int.self) {
                self = .shortestEdge(n)
                return
            }
            let c = try decoder.container(keyedBy: AnyKey.self)
            if let n = try c.decodeIfPresent(Int.self, forKey: AnyKey("shortest_edge")) {
                self = .shortestEdge(n)
            } else {
                self = .exact(
                    height: try c.decode(Int.self, forKey: AnyKey("height")),
                    width: try c.decode(Int.self, forKey: AnyKey("width")))
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: AnyKey.self)
            switch self {
            case .shortestEdge(let n): try c.encode(n, forKey: AnyKey("shortest_edge"))
            case .exact(let h, let w):
                try c.encode(h, forKey: AnyKey("height"))
                try c.encode(w, forKey: AnyKey("width"))
            }
        }
    }

    /// A crop size: an integer `n` means n × n.
    public struct Size: Codable, Equatable, Sendable {
        public var height: Int
        public var width: Int

        public init(height: Int, width: Int) {
            self.height = height
            self.width = width
        }

        public init(from decoder: any Decoder) throws {
            if let n = try? decoder.singleValueContainer().decode(Int.self) {
                height = n
                width = n
                return
            }
            let c = try decoder.container(keyedBy: AnyKey.self)
            height = try c.decode(Int.self, forKey: AnyKey("height"))
            width = try c.decode(Int.self, forKey: AnyKey("width"))
        }
    }

    /// OpenAI CLIP's normalization mean.
    public static let openAIMean = [0.48145466, 0.4578275, 0.40821073]
    /// OpenAI CLIP's normalization standard deviation.
    public static let openAIStd = [0.26862954, 0.26130258, 0.27577711]

    public var source = "<memory>"
    /// Resize first (default true).
    public var doResize: Bool
    /// Resize target (default shortest edge 224).
    public var size: Resize
    /// PIL resampling filter (default 3, bicubic).
    public var resample: Int
    /// Center-crop after resizing (default true).
    public var doCenterCrop: Bool
    /// Crop size (default 224 × 224).
    public var cropSize: Size
    /// Multiply pixel values by `rescaleFactor` (default true).
    public var doRescale: Bool
    /// Pixel scale (default 1/255).
    public var rescaleFactor: Double
    /// Normalize with mean/std (default true).
    public var doNormalize: Bool
    /// Per-channel mean (default OpenAI CLIP's).
    public var imageMean: [Double]
    /// Per-channel std (default OpenAI CLIP's).
    public var imageStd: [Double]
    /// Convert to RGB first (default true).
    public var doConvertRGB: Bool

    enum CodingKeys: String, CodingKey {
        case doResize = "do_resize"
        case size, resample
        case doCenterCrop = "do_center_crop"
        case cropSize = "crop_size"
        case doRescale = "do_rescale"
        case rescaleFactor = "rescale_factor"
        case doNormalize = "do_normalize"
        case imageMean = "image_mean"
        case imageStd = "image_std"
        case doConvertRGB = "do_convert_rgb"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        doResize = try c.value(.doResize, true)
        size = try c.value(.size, .shortestEdge(224))
        resample = try c.value(.resample, 3)
        doCenterCrop = try c.value(.doCenterCrop, true)
        cropSize = try c.value(.cropSize, Size(height: 224, width: 224))
        doRescale = try c.value(.doRescale, true)
        rescaleFactor = try c.value(.rescaleFactor, 1.0 / 255.0)
        doNormalize = try c.value(.doNormalize, true)
        imageMean = try c.value(.imageMean, Self.openAIMean)
        imageStd = try c.value(.imageStd, Self.openAIStd)
        doConvertRGB = try c.value(.doConvertRGB, true)
    }

    public func validate() throws {
        let filters = SupportedConfigValues.resampleFilters
        if !filters.contains(resample) { throw unsupported("resample", resample, supported: filters.map(String.init)) }
        if imageMean.count != 3 { throw invalid("image_mean", "needs 3 values, has \(imageMean.count)") }
        if imageStd.count != 3 || imageStd.contains(where: { !($0 > 0) }) {
            throw invalid("image_std", "needs 3 positive values, has \(imageStd)")
        }
        switch size {
        case .shortestEdge(let n) where n < 1: throw invalid("size", "must be ≥ 1")
        case .exact(let h, let w) where h < 1 || w < 1: throw invalid("size", "must be ≥ 1")
        default: break
        }
        if cropSize.height < 1 || cropSize.width < 1 { throw invalid("crop_size", "must be ≥ 1") }
    }
}
