import Foundation
import Tensors

/// NumPy `.npy` files: read (`<f4`, `<f2`, `<f8`, `|u1`; header versions 1–3; C order) and write (f32/f16).
public enum NPY {
    /// Element types `write` can produce.
    public enum DType: String, Sendable {
        case float32 = "<f4"
        case float16 = "<f2"
    }

    private static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // \x93NUMPY

    /// What an `.npy` header says, checked against the file's size.
    public struct Header: Sendable, Equatable {
        /// NumPy dtype string: `<f4`, `<f2`, `<f8` or `|u1`.
        public let descr: String
        /// The array's shape (C order).
        public let shape: [Int]
        /// Bytes per element.
        public let elementSize: Int
        /// Where the data starts in the file.
        public let dataOffset: Int
    }

    /// Reads and checks the header of the `.npy` file at `url` without decoding its data: the magic, versions
    /// 1–3, a supported dtype, C order, and a file size equal to what the shape needs. Errors name the file
    /// and the header key at fault.
    public static func header(of url: URL) throws -> Header {
        try header(MappedFile(url: url), file: url.path)
    }

    static func header(_ mapping: MappedFile, file: String) throws -> Header {
        let r = ByteReader(mapping.bytes, file: file)
        guard mapping.count >= 6, Array(try r.slice(0, 6, "magic")) == magic else {
            throw CheckpointError(file: file, "not an .npy file (bad magic)")
        }
        try r.check(0, 10, "npy preamble")
        let major = try r.u8(6)
        let headerLength: Int
        let headerStart: Int
        switch major {
        case 1:
            headerLength = Int(try r.u16(8))
            headerStart = 10
        case 2, 3:
            headerLength = Int(try r.u32(8))
            headerStart = 12
        default:
            throw CheckpointError(file: file, "unsupported .npy version \(major)")
        }
        let headerBytes = try r.slice(headerStart, headerLength, "npy header")
        guard let header = String(bytes: headerBytes, encoding: major == 3 ? .utf8 : .isoLatin1) else {
            throw CheckpointError(file: file, "header is not text")
        }
        let fields = try parseHeader(header, file: file)
        guard case .string(let descr)? = fields["descr"] else {
            throw CheckpointError(file: file, key: "descr", "missing or not a string")
        }
        guard case .bool(let fortran)? = fields["fortran_order"] else {
            throw CheckpointError(file: file, key: "fortran_order", "missing or not a bool")
        }
        guard !fortran else {
            throw CheckpointError(file: file, key: "fortran_order", "Fortran-ordered arrays are not supported")
        }
        guard case .shape(let shape)? = fields["shape"] else {
            throw CheckpointError(file: file, key: "shape", "missing or not a tuple of integers")
        }
        let elementSize: Int
        switch descr {
        case "<f4": elementSize = 4
        case "<f2": elementSize = 2
        case "<f8": elementSize = 8
        case "|u1", "<u1": elementSize = 1
        default:
            throw CheckpointError(
                file: file, key: "descr", "unsupported dtype '\(descr)' (expected <f4, <f2, <f8 or |u1)")
        }
        guard let numel = checkedProduct(shape), let bytes = checkedProduct([numel, elementSize]) else {
            throw CheckpointError(file: file, key: "shape", "invalid shape \(shape)")
        }
        let dataStart = headerStart + headerLength
        guard mapping.count - dataStart == bytes else {
            throw CheckpointError(
                file: file,
                "data holds \(mapping.count - dataStart) bytes but \(descr) \(shape) needs \(bytes) (truncated?)")
        }
        return Header(descr: descr, shape: shape, elementSize: elementSize, dataOffset: dataStart)
    }

    /// Reads a C-ordered array as Float32; errors name the file (and the header key at fault).
    public static func read(url: URL) throws -> Tensor {
        let file = url.path
        let mapping = try MappedFile(url: url)
        let h = try header(mapping, file: file)
        let (descr, shape, dataStart) = (h.descr, h.shape, h.dataOffset)
        let numel = shape.reduce(1, *)
        var out = Tensor(zeros: shape)
        guard numel > 0, let base = mapping.bytes.baseAddress else { return out }
        let src = base + dataStart
        out.withUnsafeMutableBufferPointer { dst in
            guard let d = dst.baseAddress else { return }
            switch descr {
            case "<f4": StoredDType.float32.decode(src, count: numel, into: d)
            case "<f2": StoredDType.float16.decode(src, count: numel, into: d)
            case "<f8":
                for i in 0..<numel {
                    let bits = UInt64(littleEndian: src.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))
                    d[i] = Float(Double(bitPattern: bits))
                }
            default:
                for i in 0..<numel { d[i] = Float(src.load(fromByteOffset: i, as: UInt8.self)) }
            }
        }
        return out
    }

    /// Writes `tensor` as a version-1 `.npy` (C order, little-endian) of the given element type.
    public static func write(_ tensor: Tensor, to url: URL, dtype: DType = .float32) throws {
        let dims = tensor.shape.map(String.init)
        let shape = dims.count == 1 ? "(\(dims[0]),)" : "(\(dims.joined(separator: ", ")))"
        var header = "{'descr': '\(dtype.rawValue)', 'fortran_order': False, 'shape': \(shape), }"
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        guard header.utf8.count <= Int(UInt16.max) else {
            throw CheckpointError(file: url.path, "shape \(tensor.shape) gives too long a header")
        }
        var data = Data(magic + [1, 0])
        withUnsafeBytes(of: UInt16(header.utf8.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(contentsOf: Array(header.utf8))
        tensor.withUnsafeBufferPointer { buf in
            switch dtype {
            case .float32:
                for v in buf { withUnsafeBytes(of: v.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
            case .float16:
                for v in buf { withUnsafeBytes(of: Float16(v).bitPattern.littleEndian) { data.append(contentsOf: $0) } }
            }
        }
        do {
            try data.write(to: url, options: .atomic)
        } catch {
            throw CheckpointError(file: url.path, "cannot write: \(error)")
        }
    }

    enum HeaderValue {
        case string(String)
        case bool(Bool)
        case shape([Int])
    }

    /// Parses the Python dict literal of an `.npy` header: `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`.
    static func parseHeader(_ text: String, file: String) throws -> [String: HeaderValue] {
        var s = Substring(text.trimmingCharacters(in: .whitespacesAndNewlines))
        func bad(_ why: String) -> CheckpointError {
            CheckpointError(
                file: file, "malformed header (\(why)): \(text.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        func skipSpaces() { s = s.drop(while: { $0 == " " }) }
        func expect(_ c: Character) throws {
            skipSpaces()
            guard s.first == c else { throw bad("expected '\(c)'") }
            s = s.dropFirst()
        }
        func quoted() throws -> String {
            skipSpaces()
            guard let q = s.first, q == "'" || q == "\"" else { throw bad("expected a string") }
            s = s.dropFirst()
            guard let end = s.firstIndex(of: q) else { throw bad("unterminated string") }
            let value = String(s[..<end])
            s = s[s.index(after: end)...]
            return value
        }
        try expect("{")
        var out: [String: HeaderValue] = [:]
        while true {
            skipSpaces()
            if s.first == "}" { break }
            let key = try quoted()
            try expect(":")
            skipSpaces()
            if s.first == "'" || s.first == "\"" {
                out[key] = .string(try quoted())
            } else if s.hasPrefix("True") {
                out[key] = .bool(true)
                s = s.dropFirst(4)
            } else if s.hasPrefix("False") {
                out[key] = .bool(false)
                s = s.dropFirst(5)
            } else if s.first == "(" {
                s = s.dropFirst()
                guard let close = s.firstIndex(of: ")") else { throw bad("unterminated tuple") }
                let parts = s[..<close].split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                    .filter { !$0.isEmpty }
                var dims: [Int] = []
                for p in parts {
                    guard let d = Int(p.hasSuffix("L") ? String(p.dropLast()) : p), d >= 0 else {
                        throw CheckpointError(file: file, key: "shape", "invalid dimension '\(p)'")
                    }
                    dims.append(d)
                }
                out[key] = .shape(dims)
                s = s[s.index(after: close)...]
            } else {
                throw bad("unsupported value for '\(key)'")
            }
            skipSpaces()
            if s.first == "," { s = s.dropFirst() }
        }
        return out
    }
}
