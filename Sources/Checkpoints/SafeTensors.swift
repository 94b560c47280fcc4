import Foundation
import Tensors

/// A memory-mapped `.safetensors` file, validated on open.
///
/// As float32 (`tensor(named:)`), F32 tensors at 4-byte-aligned offsets are borrowed from the mapping without
/// copying; F16 and BF16 (and unaligned F32) are converted into owned Float32 storage. As float16
/// (`halfTensor(named:)`), F16 tensors at 2-byte-aligned offsets are borrowed; the others are converted, and
/// their pages of the mapping released, so that converting a float32 file does not leave it resident.
public final class SafeTensorsFile: TensorArchive {
    /// Where a tensor lies in the file.
    struct Entry: Sendable {
        let dtype: String
        let shape: [Int]
        let begin: Int  // absolute byte offset in the file
        let end: Int
    }

    /// Largest header accepted (the reference implementation's limit).
    public static let maxHeaderSize = 100_000_000

    /// Element sizes of every dtype the format defines; only `StoredDType` ones can be read.
    static let dtypeSizes: [String: Int] = [
        "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
        "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1,
    ]

    /// The file.
    public let url: URL
    /// The `__metadata__` map (empty when absent).
    public let metadata: [String: String]
    private let mapping: MappedFile
    private let entries: [String: Entry]
    public let keys: [String]

    public var fileDescription: String { url.path }

    /// Maps and validates `url`; every error names the file and, where one is at fault, the tensor key.
    public init(url: URL) throws {
        self.url = url
        let file = url.path
        mapping = try MappedFile(url: url)
        let reader = ByteReader(mapping.bytes, file: file)
        guard mapping.count >= 8 else {
            throw CheckpointError(
                file: file, "truncated: \(mapping.count) bytes, too short for the 8-byte header length")
        }
        let rawLength = try reader.u64(0, "header length")
        guard rawLength <= UInt64(Self.maxHeaderSize) else {
            throw CheckpointError(file: file, "header length \(rawLength) exceeds the \(Self.maxHeaderSize)-byte limit")
        }
        let headerLength = Int(rawLength)
        guard headerLength <= mapping.count - 8 else {
            throw CheckpointError(
                file: file, "header length \(headerLength) runs past the end of the file (\(mapping.count) bytes)")
        }
        let headerBytes = try reader.slice(8, headerLength, "header")
        let header = try JSONValue.parse(Data(headerBytes), file: file)
        guard let object = header.objectValue else {
            throw CheckpointError(file: file, "header is not a JSON object")
        }
        let dataStart = 8 + headerLength
        let dataSize = mapping.count - dataStart
        var metadata: [String: String] = [:]
        var entries: [String: Entry] = [:]
        for (key, value) in object {
            if key == "__metadata__" {
                guard let pairs = value.objectValue else {
                    throw CheckpointError(file: file, key: key, "metadata must be an object of strings")
                }
                for (k, v) in pairs {
                    guard let s = v.stringValue else {
                        throw CheckpointError(file: file, key: "__metadata__.\(k)", "metadata value is not a string")
                    }
                    metadata[k] = s
                }
                continue
            }
            entries[key] = try Self.parseEntry(value, key: key, file: file, dataStart: dataStart, dataSize: dataSize)
        }
        // No two tensors may share bytes.
        let ordered = entries.sorted { ($0.value.begin, $0.value.end) < ($1.value.begin, $1.value.end) }
        for (previous, next) in zip(ordered, ordered.dropFirst()) where next.value.begin < previous.value.end {
            throw CheckpointError(
                file: file, key: next.key,
                "data overlaps tensor '\(previous.key)' (bytes \(next.value.begin - dataStart)..<"
                    + "\(next.value.end - dataStart) vs \(previous.value.begin - dataStart)..<"
                    + "\(previous.value.end - dataStart) of the data section)")
        }
        self.metadata = metadata
        self.entries = entries
        keys = entries.keys.sorted()
    }

    private static func parseEntry(
        _ value: JSONValue, key: String, file: String, dataStart: Int, dataSize: Int
    ) throws -> Entry {
        guard let fields = value.objectValue else {
            throw CheckpointError(file: file, key: key, "entry is not an object")
        }
        guard let dtype = fields["dtype"]?.stringValue else {
            throw CheckpointError(file: file, key: key, "missing or non-string 'dtype'")
        }
        guard let elementSize = dtypeSizes[dtype] else {
            throw CheckpointError(file: file, key: key, "unsupported dtype '\(dtype)'")
        }
        guard let dims = fields["shape"]?.arrayValue else {
            throw CheckpointError(file: file, key: key, "missing or non-array 'shape'")
        }
        let shape = try dims.map { d -> Int in
            guard let i = d.intValue, i >= 0 else {
                throw CheckpointError(file: file, key: key, "shape \(dims) must hold non-negative integers")
            }
            return i
        }
        guard let offsets = fields["data_offsets"]?.arrayValue, offsets.count == 2,
            let begin = offsets[0].intValue, let end = offsets[1].intValue
        else {
            throw CheckpointError(file: file, key: key, "'data_offsets' must be [begin, end] integers")
        }
        guard begin >= 0, begin <= end, end <= dataSize else {
            throw CheckpointError(
                file: file, key: key,
                "data_offsets [\(begin), \(end)] out of range of the \(dataSize)-byte data section")
        }
        let needed = checkedProduct(shape + [elementSize])
        guard needed == end - begin else {
            throw CheckpointError(
                file: file, key: key,
                "data_offsets [\(begin), \(end)] span \(end - begin) bytes but \(dtype) \(shape) needs "
                    + (needed.map { "\($0)" } ?? "more than Int.max"))
        }
        return Entry(dtype: dtype, shape: shape, begin: dataStart + begin, end: dataStart + end)
    }

    /// The stored dtype name of `key` (e.g. `"F16"`).
    public func dtype(of key: String) throws -> String {
        try entry(key).dtype
    }

    public func shape(of key: String) throws -> [Int] {
        try entry(key).shape
    }

    public func tensor(named key: String) throws -> Tensor {
        let e = try entry(key)
        guard let dtype = StoredDType(rawValue: e.dtype) else {
            throw CheckpointError(
                file: url.path, key: key, "unsupported dtype '\(e.dtype)' (only F32, F16 and BF16 can be read)")
        }
        let count = e.end - e.begin
        guard count > 0, let base = mapping.bytes.baseAddress else {
            return Tensor(zeros: e.shape)
        }
        let source = base + e.begin
        let numel = count / dtype.size
        if dtype == .float32, Int(bitPattern: source) % MemoryLayout<Float>.alignment == 0 {
            let storage = TensorStorage(
                borrowing: source.assumingMemoryBound(to: Float.self), count: numel, owner: mapping)
            return Tensor(shape: e.shape, storage: storage)
        }
        var out = Tensor(zeros: e.shape)
        out.withUnsafeMutableBufferPointer { dst in
            if let d = dst.baseAddress { dtype.decode(source, count: numel, into: d) }
        }
        return out
    }

    public func halfTensor(named key: String) throws -> HalfTensor {
        let e = try entry(key)
        guard e.dtype == StoredDType.float16.rawValue else {
            let converted = HalfTensor(narrowing: try tensor(named: key))
            if let base = mapping.bytes.baseAddress {
                mapping.releaseResidentPages(from: base + e.begin, length: e.end - e.begin)
            }
            return converted
        }
        let numel = (e.end - e.begin) / 2
        guard numel > 0, let base = mapping.bytes.baseAddress else {
            return HalfTensor(shape: e.shape, storage: HalfStorage(count: 0) { _ in })
        }
        let source = base + e.begin
        if Int(bitPattern: source) % MemoryLayout<UInt16>.alignment == 0 {
            let storage = HalfStorage(
                borrowing: source.assumingMemoryBound(to: UInt16.self), count: numel, owner: mapping)
            return HalfTensor(shape: e.shape, storage: storage)
        }
        let storage = HalfStorage(count: numel) { dst in
            dst.baseAddress.map { UnsafeMutableRawPointer($0).copyMemory(from: source, byteCount: numel * 2) }
            for i in dst.indices { dst[i] = UInt16(littleEndian: dst[i]) }
        }
        return HalfTensor(shape: e.shape, storage: storage)
    }

    private func entry(_ key: String) throws -> Entry {
        guard let e = entries[key] else {
            throw CheckpointError(file: url.path, key: key, "no such tensor")
        }
        return e
    }
}

/// Writes `.safetensors` files (F32, F16 or BF16).
public enum SafeTensorsWriter {
    /// Writes `tensors` with the given `__metadata__`, keys sorted, header padded to 8 bytes, every tensor stored as
    /// `dtype` (F16 and BF16 rounded to nearest even, as torch's `.half()` and `.bfloat16()`).
    public static func write(
        _ tensors: [String: Tensor], dtype: StoredDType = .float32, metadata: [String: String] = [:], to url: URL
    ) throws {
        var fields: [String] = []
        if !metadata.isEmpty {
            let pairs = metadata.keys.sorted().map { "\(jsonQuoted($0)):\(jsonQuoted(metadata[$0] ?? ""))" }
            fields.append("\"__metadata__\":{\(pairs.joined(separator: ","))}")
        }
        var offset = 0
        let names = tensors.keys.sorted()
        for name in names {
            guard let t = tensors[name], name != "__metadata__" else {
                throw CheckpointError(file: url.path, key: name, "reserved tensor name")
            }
            let size = t.count * dtype.size
            let shape = t.shape.map(String.init).joined(separator: ",")
            fields.append(
                "\(jsonQuoted(name)):{\"dtype\":\"\(dtype.rawValue)\",\"shape\":[\(shape)],"
                    + "\"data_offsets\":[\(offset),\(offset + size)]}")
            offset += size
        }
        var header = Array(("{" + fields.joined(separator: ",") + "}").utf8)
        while header.count % 8 != 0 { header.append(0x20) }
        var data = Data(capacity: 8 + header.count + offset)
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(contentsOf: header)
        for name in names {
            guard let t = tensors[name] else { continue }
            t.withUnsafeBufferPointer { buf in
                switch dtype {
                case .float32:
                    for v in buf { withUnsafeBytes(of: v.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
                case .float16:
                    for h in Float16Conversion.narrow(Array(buf)) {
                        withUnsafeBytes(of: h.littleEndian) { data.append(contentsOf: $0) }
                    }
                case .bfloat16:
                    for v in buf {
                        withUnsafeBytes(of: bfloat16Bits(v).littleEndian) { data.append(contentsOf: $0) }
                    }
                }
            }
        }
        do {
            try data.write(to: url, options: .atomic)
        } catch {
            throw CheckpointError(file: url.path, "cannot write: \(error)")
        }
    }

    /// `v` rounded to bfloat16 (nearest, ties to even; NaN stays NaN).
    static func bfloat16Bits(_ v: Float) -> UInt16 {
        let bits = v.bitPattern
        if v.isNaN { return UInt16(bits >> 16) | 0x40 }
        return UInt16((bits &+ 0x7fff &+ ((bits >> 16) & 1)) >> 16)
    }
}
