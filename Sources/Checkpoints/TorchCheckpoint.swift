import Foundation
import Tensors

/// A PyTorch `torch.save` checkpoint (zip format), read through a restricted unpickler.
///
/// The archive's `<prefix>/data.pkl` must hold a dict (or OrderedDict) of name → tensor; nested dicts are
/// flattened with dotted names (`{"state_dict": {"w": t}}` gives `state_dict.w`), and non-tensor values
/// (e.g. `global_step`) are listed in `nonTensorKeys`. Storages are STORED entries `<prefix>/data/<key>`,
/// memory-mapped; contiguous aligned F32 tensors (as float32) and Half tensors (as float16) are borrowed without
/// copying, others are gathered.
public final class TorchCheckpoint: TensorArchive {
    /// The file.
    public let url: URL
    /// Names whose values were not tensors (ignored).
    public let nonTensorKeys: [String]
    public let keys: [String]
    private let archive: ZipArchive
    private let prefix: String
    private let records: [String: TorchTensorRecord]

    public var fileDescription: String { url.path }

    /// Opens and unpickles `url`; refuses any global other than torch's state-dict ones.
    public init(url: URL) throws {
        self.url = url
        let file = url.path
        archive = try ZipArchive(mapping: MappedFile(url: url))
        let pickles = archive.names.filter { name in
            let parts = name.split(separator: "/", omittingEmptySubsequences: false)
            return parts.count == 2 && parts[1] == "data.pkl"
        }
        guard pickles.count == 1, let pickle = pickles.first else {
            throw CheckpointError(
                file: file, "expected one '<folder>/data.pkl' in the archive, found \(pickles.count)")
        }
        prefix = String(pickle.dropLast("/data.pkl".count))
        if archive.entries["\(prefix)/byteorder"] != nil {
            let order = String(decoding: try archive.data(of: "\(prefix)/byteorder"), as: UTF8.self)
            guard order.trimmingCharacters(in: .whitespacesAndNewlines) == "little" else {
                throw CheckpointError(file: file, key: "\(prefix)/byteorder", "byte order '\(order)' is not supported")
            }
        }
        var unpickler = RestrictedUnpickler(try archive.data(of: pickle), file: file, entry: pickle)
        let root = try unpickler.load()
        guard case .dict = root else {
            throw CheckpointError(file: file, key: pickle, "top-level object is a \(root.kind), not a dict of tensors")
        }
        var records: [String: TorchTensorRecord] = [:]
        var others: [String] = []
        try Self.flatten(root, path: "", file: file, into: &records, others: &others, depth: 0)
        self.records = records
        nonTensorKeys = others.sorted()
        keys = records.keys.sorted()
    }

    private static func flatten(
        _ value: PickleValue, path: String, file: String, into records: inout [String: TorchTensorRecord],
        others: inout [String], depth: Int
    ) throws {
        switch value {
        case .tensor(let t):
            guard records[path] == nil else { throw CheckpointError(file: file, key: path, "duplicate key") }
            records[path] = t
        case .dict(let d) where depth < 8:
            for (k, v) in d.items {
                let name: String
                switch k {
                case .string(let s): name = s
                case .int(let i): name = String(i)
                default: throw CheckpointError(file: file, key: path, "dict key of type \(k.kind)")
                }
                let full = path.isEmpty ? name : "\(path).\(name)"
                try flatten(v, path: full, file: file, into: &records, others: &others, depth: depth + 1)
            }
        default:
            others.append(path)
        }
    }

    public func shape(of key: String) throws -> [Int] {
        try record(key).size
    }

    /// The torch storage type of `key`, e.g. `"FloatStorage"`.
    public func storageType(of key: String) throws -> String {
        try record(key).storage.storageType
    }

    public func tensor(named key: String) throws -> Tensor {
        let (rec, dtype, located) = try locate(key)
        guard let start = located else { return Tensor(zeros: rec.size) }
        let numel = rec.size.reduce(1, *)
        if isContiguous(size: rec.size, stride: rec.stride) {
            if dtype == .float32, Int(bitPattern: start) % MemoryLayout<Float>.alignment == 0 {
                let storage = TensorStorage(
                    borrowing: start.assumingMemoryBound(to: Float.self), count: numel, owner: archive.mapping)
                return Tensor(shape: rec.size, storage: storage)
            }
            var out = Tensor(zeros: rec.size)
            out.withUnsafeMutableBufferPointer { dst in
                if let d = dst.baseAddress { dtype.decode(start, count: numel, into: d) }
            }
            return out
        }
        var out = Tensor(zeros: rec.size)
        out.withUnsafeMutableBufferPointer { dst in
            var written = 0
            gather(start, dtype: dtype, size: rec.size, stride: rec.stride, dim: 0, into: dst, written: &written)
        }
        return out
    }

    /// As float16: a contiguous, 2-byte-aligned `HalfStorage` is borrowed from the mapping; anything else is read
    /// as float32 and rounded to nearest even (and its pages of the mapping released).
    public func halfTensor(named key: String) throws -> HalfTensor {
        let (rec, dtype, located) = try locate(key)
        if dtype == .float16, let start = located, isContiguous(size: rec.size, stride: rec.stride),
            Int(bitPattern: start) % MemoryLayout<UInt16>.alignment == 0
        {
            let storage = HalfStorage(
                borrowing: start.assumingMemoryBound(to: UInt16.self), count: rec.size.reduce(1, *),
                owner: archive.mapping)
            return HalfTensor(shape: rec.size, storage: storage)
        }
        let converted = HalfTensor(narrowing: try tensor(named: key))
        if let start = located, isContiguous(size: rec.size, stride: rec.stride) {
            archive.mapping.releaseResidentPages(from: start, length: converted.count * dtype.size)
        }
        return converted
    }

    /// The record of `key`, its dtype and its first element in the mapping (`nil` when it has no elements),
    /// after checking its size, strides and offset against the storage.
    private func locate(_ key: String) throws -> (TorchTensorRecord, StoredDType, UnsafeRawPointer?) {
        let file = url.path
        let rec = try record(key)
        let dtype: StoredDType
        switch rec.storage.storageType {
        case "FloatStorage": dtype = .float32
        case "HalfStorage": dtype = .float16
        case "BFloat16Storage": dtype = .bfloat16
        default:
            throw CheckpointError(
                file: file, key: key,
                "unsupported storage type torch.\(rec.storage.storageType) (only Float, Half and BFloat16)")
        }
        let bytes = try archive.data(of: "\(prefix)/data/\(rec.storage.key)")
        let available = bytes.count / dtype.size
        guard rec.storage.numel <= available else {
            throw CheckpointError(
                file: file, key: key,
                "storage \(rec.storage.key) claims \(rec.storage.numel) elements but holds \(available)")
        }
        guard rec.size.count == rec.stride.count, let numel = checkedProduct(rec.size),
            rec.stride.allSatisfy({ $0 >= 0 }), rec.offset >= 0
        else {
            throw CheckpointError(
                file: file, key: key, "invalid size \(rec.size) / stride \(rec.stride) / offset \(rec.offset)")
        }
        guard rec.size.count <= 64, numel <= max(rec.storage.numel, 1 << 24) else {
            throw CheckpointError(
                file: file, key: key,
                "size \(rec.size) (\(numel) elements) is implausible for a \(rec.storage.numel)-element storage")
        }
        if numel == 0 { return (rec, dtype, nil) }
        // Highest element index reached, checked against the storage.
        var last = rec.offset
        for (n, s) in zip(rec.size, rec.stride) {
            let (step, o1) = (n - 1).multipliedReportingOverflow(by: s)
            let (sum, o2) = last.addingReportingOverflow(step)
            guard !o1, !o2 else { throw CheckpointError(file: file, key: key, "strides overflow") }
            last = sum
        }
        guard last < rec.storage.numel else {
            throw CheckpointError(
                file: file, key: key,
                "size \(rec.size) stride \(rec.stride) offset \(rec.offset) reaches element \(last) "
                    + "of a \(rec.storage.numel)-element storage")
        }
        guard let base = bytes.baseAddress else { return (rec, dtype, nil) }
        return (rec, dtype, base + rec.offset * dtype.size)
    }

    private func isContiguous(size: [Int], stride: [Int]) -> Bool {
        var expected = 1
        for d in size.indices.reversed() {
            if size[d] != 1, stride[d] != expected { return false }
            expected *= size[d]
        }
        return true
    }

    /// Copies a strided view into contiguous row-major order.
    private func gather(
        _ source: UnsafeRawPointer, dtype: StoredDType, size: [Int], stride: [Int], dim: Int,
        into dst: UnsafeMutableBufferPointer<Float>, written: inout Int
    ) {
        if dim == size.count - 1 {
            for i in 0..<size[dim] {
                dst[written] = dtype.element(source + i * stride[dim] * dtype.size)
                written += 1
            }
            return
        }
        for i in 0..<size[dim] {
            gather(
                source + i * stride[dim] * dtype.size, dtype: dtype, size: size, stride: stride, dim: dim + 1,
                into: dst, written: &written)
        }
    }

    private func record(_ key: String) throws -> TorchTensorRecord {
        guard let r = records[key] else {
            throw CheckpointError(file: url.path, key: key, "no such tensor")
        }
        return r
    }
}
