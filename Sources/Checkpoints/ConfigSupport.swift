import Foundation

/// A model or scheduler config decoded from its own JSON (`config.json`, `scheduler_config.json`, …).
///
/// Keys absent from the JSON take the defaults of the Python class that wrote it; `validate()` refuses values
/// our networks cannot run, naming the file (`source`) and the key.
public protocol CheckpointConfig: Codable, Sendable {
    /// Where the config was read from, for error messages (`"<memory>"` when built in code).
    var source: String { get set }
    /// Throws a `CheckpointError` naming `source` and the key when a value is not supported.
    func validate() throws
}

extension CheckpointConfig {
    /// Decodes `data` (errors name `source` and the key path), then validates it.
    public static func decode(_ data: Data, source: String = "<memory>") throws -> Self {
        var config: Self
        do {
            config = try pythonJSONDecoder().decode(Self.self, from: data)
        } catch let error as CheckpointError {
            throw CheckpointError(file: source, key: error.key, error.message)
        } catch let error as DecodingError {
            throw describe(error, source: source)
        }
        config.source = source
        try config.validate()
        return config
    }

    /// Reads, decodes and validates the config at `url`.
    public static func load(url: URL) throws -> Self {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw CheckpointError(file: url.path, "cannot read: \(error.localizedDescription)")
        }
        return try decode(data, source: url.path)
    }

    /// An error naming `key` as holding a value outside `supported`.
    func unsupported(_ key: String, _ value: Any, supported: [String]) -> CheckpointError {
        CheckpointError(
            file: source, key: key, "unsupported value \(value) (supported: \(supported.joined(separator: ", ")))")
    }

    /// Keys of `inert` present in the JSON behind `decoder` with a value other than their inert one or null:
    /// settings of the Python class that would change behaviour in ways not implemented here.
    static func changedSettings(in decoder: any Decoder, inert: [String: JSONValue]) throws -> [String] {
        let all = try decoder.container(keyedBy: AnyKey.self)
        var changed: [String] = []
        for (key, neutral) in inert.sorted(by: { $0.key < $1.key }) {
            guard let value = try all.decodeIfPresent(JSONValue.self, forKey: AnyKey(key)) else { continue }
            switch (value, neutral) {
            case (.null, _): continue
            case (.int(let a), .double(let b)) where Double(a) == b: continue
            default: if value != neutral { changed.append(key) }
            }
        }
        return changed
    }

    /// Throws naming the first of `changed` (see `changedSettings`) and the value it supports.
    func refuseChanged(_ changed: [String], inert: [String: JSONValue]) throws {
        guard let key = changed.first else { return }
        let allowed: String
        switch inert[key] {
        case .string(let v)?: allowed = "\"\(v)\" or null"
        case .double(let v)?: allowed = "\(v) or null"
        case .bool(let v)?: allowed = "\(v) or null"
        default: allowed = "null"
        }
        throw invalid(key, "unsupported value (supported: \(allowed))")
    }

    /// Throws `unsupported` naming `key` unless every one of `values` is in `supported` (`nil` passes).
    func require(_ key: String, _ values: [String?], in supported: [String]) throws {
        for case let v? in values where !supported.contains(v) { throw unsupported(key, v, supported: supported) }
    }

    /// An error naming `key` with a free-form reason.
    func invalid(_ key: String, _ message: String) -> CheckpointError {
        CheckpointError(file: source, key: key, message)
    }
}

private func describe(_ error: DecodingError, source: String) -> CheckpointError {
    func path(_ context: DecodingError.Context, _ extra: CodingKey? = nil) -> String? {
        let keys = (context.codingPath + (extra.map { [$0] } ?? [])).map {
            $0.intValue.map(String.init) ?? $0.stringValue
        }
        return keys.isEmpty ? nil : keys.joined(separator: ".")
    }
    switch error {
    case .typeMismatch(let type, let c):
        return CheckpointError(file: source, key: path(c), "expected \(type): \(c.debugDescription)")
    case .valueNotFound(let type, let c):
        return CheckpointError(file: source, key: path(c), "missing \(type): \(c.debugDescription)")
    case .keyNotFound(let key, let c):
        return CheckpointError(file: source, key: path(c, key), "required key missing")
    case .dataCorrupted(let c):
        return CheckpointError(file: source, key: path(c), "invalid: \(c.debugDescription)")
    @unknown default:
        return CheckpointError(file: source, "\(error)")
    }
}

/// Values the networks support, one table to extend when a network learns a new variant.
public enum SupportedConfigValues {
    /// `act_fn` of UNet and VAE.
    public static let activations = ["silu", "swish"]
    /// UNet `down_block_types`.
    public static let unetDownBlocks = ["CrossAttnDownBlock2D", "DownBlock2D"]
    /// UNet `mid_block_type`.
    public static let unetMidBlocks = ["UNetMidBlock2DCrossAttn"]
    /// UNet `up_block_types`.
    public static let unetUpBlocks = ["CrossAttnUpBlock2D", "UpBlock2D"]
    /// UNet `time_embedding_type`.
    public static let timeEmbeddings = ["positional"]
    /// UNet `resnet_time_scale_shift`.
    public static let resnetTimeScaleShifts = ["default"]
    /// VAE `down_block_types`.
    public static let vaeDownBlocks = ["DownEncoderBlock2D"]
    /// VAE `up_block_types`.
    public static let vaeUpBlocks = ["UpDecoderBlock2D"]
    /// Scheduler `_class_name`.
    public static let schedulers = [
        "PNDMScheduler", "DDIMScheduler", "EulerDiscreteScheduler", "EulerAncestralDiscreteScheduler",
        "DPMSolverMultistepScheduler",
    ]
    /// Scheduler `beta_schedule`.
    public static let betaSchedules = ["linear", "scaled_linear", "squaredcos_cap_v2"]
    /// Scheduler `prediction_type`.
    public static let predictionTypes = ["epsilon", "v_prediction", "sample"]
    /// Scheduler `timestep_spacing`.
    public static let timestepSpacings = ["leading", "trailing", "linspace"]
    /// CLIP `hidden_act`.
    public static let clipActivations = ["quick_gelu", "gelu"]
    /// Preprocessor `resample` (PIL filter numbers: 2 bilinear, 3 bicubic).
    public static let resampleFilters = [3]  // PIL bicubic: the only resampler our clip preprocessing has
}

/// Coding key from a string, for reading nested or dynamic keys.
/// A decoder for JSON written by Python's `json` module, which writes `Infinity`, `-Infinity` and `NaN` as bare
/// tokens (e.g. DPMSolverMultistepScheduler's `"lambda_min_clipped": -Infinity`); JSON5 accepts them.
func pythonJSONDecoder() -> JSONDecoder {
    let decoder = JSONDecoder()
    decoder.allowsJSON5 = true
    return decoder
}

struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ s: String) { stringValue = s }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

extension KeyedDecodingContainer {
    /// The value at `key`, or `fallback` when the key is absent or null.
    func value<T: Decodable>(_ key: Key, _ fallback: T) throws -> T {
        try decodeIfPresent(T.self, forKey: key) ?? fallback
    }

    /// A scalar-or-array field normalized to one value per block (`count` of them); `fallback` when absent.
    func perBlock<T: Decodable>(_ key: Key, _ fallback: T, count: Int) throws -> [T] {
        try perBlockIfPresent(key, T.self, count: count) ?? Array(repeating: fallback, count: count)
    }

    /// Like `perBlock`, but `nil` when the key is absent or null.
    func perBlockIfPresent<T: Decodable>(_ key: Key, _ type: T.Type, count: Int) throws -> [T]? {
        guard contains(key), !(try decodeNil(forKey: key)) else { return nil }
        if let one = try? decode(T.self, forKey: key) { return Array(repeating: one, count: count) }
        let many = try decode([T].self, forKey: key)
        guard many.count == count else {
            throw CheckpointError(
                file: "", key: key.stringValue, "has \(many.count) entries but there are \(count) blocks")
        }
        return many
    }
}

/// Where a CLIP tower's config fields are read from: a composite `CLIPConfig`'s `NAME_config_dict` (the legacy
/// key, which wins) then `NAME_config`, or the top level of the tower's own config.
struct TowerFields<Keys: CodingKey> {
    let sources: [KeyedDecodingContainer<Keys>]
    /// Whether the JSON was a composite `CLIPConfig`.
    let isComposite: Bool
    private let top: KeyedDecodingContainer<AnyKey>

    init(_ decoder: any Decoder, tower: String) throws {
        let top = try decoder.container(keyedBy: AnyKey.self)
        self.top = top
        isComposite = top.contains(AnyKey("\(tower)_config")) || top.contains(AnyKey("\(tower)_config_dict"))
        var sources: [KeyedDecodingContainer<Keys>] = []
        if isComposite {
            for name in ["\(tower)_config_dict", "\(tower)_config"] {
                let k = AnyKey(name)
                if top.contains(k), !(try top.decodeNil(forKey: k)) {
                    sources.append(try top.nestedContainer(keyedBy: Keys.self, forKey: k))
                }
            }
        } else {
            sources = [try decoder.container(keyedBy: Keys.self)]
        }
        self.sources = sources
    }

    /// `projection_dim`: the composite config's top-level value (default 512), else the tower's own field.
    func projectionDim(_ key: Keys) throws -> Int {
        isComposite ? try top.decodeIfPresent(Int.self, forKey: AnyKey("projection_dim")) ?? 512 : try field(key, 512)
    }

    /// The first source's value for `key`, else `fallback`.
    func field<T: Decodable>(_ key: Keys, _ fallback: T) throws -> T {
        for s in sources {
            if let v = try s.decodeIfPresent(T.self, forKey: key) { return v }
        }
        return fallback
    }
}
