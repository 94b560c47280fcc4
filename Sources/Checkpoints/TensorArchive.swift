import Foundation
import Tensors

/// A file (or in-memory set) of named tensors, read one tensor at a time.
public protocol TensorArchive: Sendable {
    /// Where the tensors come from, used in error messages.
    var fileDescription: String { get }
    /// Every tensor name, sorted.
    var keys: [String] { get }
    /// The shape stored for `key`; throws a `CheckpointError` naming the key when it is absent.
    func shape(of key: String) throws -> [Int]
    /// The tensor stored for `key`, as Float32; throws a `CheckpointError` naming the key.
    func tensor(named key: String) throws -> Tensor
    /// The tensor stored for `key`, as float16: borrowed from the file where it is stored as float16 and can be
    /// mapped, else converted once (rounded to nearest even). Throws a `CheckpointError` naming the key.
    func halfTensor(named key: String) throws -> HalfTensor
}

extension TensorArchive {
    /// Whether `key` is stored.
    public func contains(_ key: String) -> Bool { keys.contains(key) }

    /// The float32 tensor rounded to float16 (archives that hold no float16 data to borrow).
    public func halfTensor(named key: String) throws -> HalfTensor {
        HalfTensor(narrowing: try tensor(named: key))
    }

    /// The tensor stored for `key` in `precision`.
    public func weight(named key: String, precision: WeightPrecision) throws -> WeightTensor {
        switch precision {
        case .float32: .float32(try tensor(named: key))
        case .float16: .float16(try halfTensor(named: key))
        }
    }

    /// Every tensor, loaded.
    public func loadAll() throws -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for key in keys { out[key] = try tensor(named: key) }
        return out
    }
}

/// Tensors already in memory: the simple second implementation of `TensorArchive`, for tests and tools.
public struct InMemoryTensorArchive: TensorArchive {
    /// The tensors by name.
    public let tensors: [String: Tensor]
    /// A label for error messages.
    public let fileDescription: String

    /// Wraps `tensors`, labelled `name` in errors.
    public init(_ tensors: [String: Tensor], name: String = "<memory>") {
        self.tensors = tensors
        fileDescription = name
    }

    public var keys: [String] { tensors.keys.sorted() }

    public func shape(of key: String) throws -> [Int] {
        try tensor(named: key).shape
    }

    public func tensor(named key: String) throws -> Tensor {
        guard let t = tensors[key] else {
            throw CheckpointError(file: fileDescription, key: key, "no such tensor")
        }
        return t
    }
}

/// Opens a tensor file by its extension: `.safetensors`, or `.bin`/`.pt`/`.pth`/`.ckpt` (torch.save zip).
public func loadTensorArchive(url: URL) throws -> any TensorArchive {
    switch url.pathExtension.lowercased() {
    case "safetensors": return try SafeTensorsFile(url: url)
    case "bin", "pt", "pth", "ckpt": return try TorchCheckpoint(url: url)
    default:
        throw CheckpointError(
            file: url.path, "unknown tensor file extension '\(url.pathExtension)' (expected .safetensors or .bin)")
    }
}
