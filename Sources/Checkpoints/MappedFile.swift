import Foundation
import Tensors

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A read-only memory mapping of a whole file; tensors borrowed from it keep it alive.
public final class MappedFile: ResidentPagesReleasing, @unchecked Sendable {
    /// The mapped file.
    public let url: URL
    /// Start of the mapping (`nil` for an empty file).
    private let base: UnsafeRawPointer?
    /// Size of the file in bytes.
    public let count: Int

    /// Maps `url` read-only; throws a `CheckpointError` naming the file when it cannot be opened or mapped.
    public init(url: URL) throws {
        self.url = url
        let path = url.path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            throw CheckpointError(file: path, "cannot open: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw CheckpointError(file: path, "cannot stat: \(String(cString: strerror(errno)))")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw CheckpointError(file: path, "not a regular file")
        }
        count = Int(info.st_size)
        if count == 0 {
            base = nil
            return
        }
        let mapped = mmap(nil, count, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let mapped, mapped != MAP_FAILED else {
            throw CheckpointError(file: path, "cannot map \(count) bytes: \(String(cString: strerror(errno)))")
        }
        base = UnsafeRawPointer(mapped)
    }

    deinit {
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), count) }
    }

    /// The file's bytes (valid while this object lives).
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    /// Drops this process's resident copies of the whole pages within `length` bytes at `start` (inside the
    /// mapping), e.g. after a float32 tensor was converted to float16, so that a converted file does not stay
    /// resident. The mapping is private, read-only and never written, so a later read faults the same bytes back
    /// in from the file.
    public func releaseResidentPages(from start: UnsafeRawPointer, length: Int) {
        guard let base, length > 0, start >= base, start + length <= base + count else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        guard page > 0 else { return }
        let first = (Int(bitPattern: start) + page - 1) / page * page
        let last = (Int(bitPattern: start) + length) / page * page
        guard last > first, let pointer = UnsafeMutableRawPointer(bitPattern: first) else { return }
        _ = madvise(pointer, last - first, Int32(MADV_DONTNEED))
    }
}

/// Bounds-checked little-endian reads from a byte region; every failure names the file.
struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    let file: String
    var key: String?

    init(_ bytes: UnsafeRawBufferPointer, file: String, key: String? = nil) {
        self.bytes = bytes
        self.file = file
        self.key = key
    }

    func check(_ offset: Int, _ length: Int, _ what: String) throws {
        guard offset >= 0, length >= 0, offset <= bytes.count, length <= bytes.count - offset else {
            throw CheckpointError(
                file: file, key: key,
                "truncated: \(what) needs bytes \(offset)..<\(offset &+ length) but only \(bytes.count) exist")
        }
    }

    func u8(_ offset: Int, _ what: String = "byte") throws -> UInt8 {
        try check(offset, 1, what)
        return bytes[offset]
    }

    func u16(_ offset: Int, _ what: String = "uint16") throws -> UInt16 {
        try check(offset, 2, what)
        return UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    func u32(_ offset: Int, _ what: String = "uint32") throws -> UInt32 {
        try check(offset, 4, what)
        return UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    func u64(_ offset: Int, _ what: String = "uint64") throws -> UInt64 {
        try check(offset, 8, what)
        return UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    func slice(_ offset: Int, _ length: Int, _ what: String) throws -> UnsafeRawBufferPointer {
        try check(offset, length, what)
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + length)])
    }
}

/// Element types that stored tensors may hold; all are read as Float32.
public enum StoredDType: String, Sendable, CaseIterable {
    case float32 = "F32"
    case float16 = "F16"
    case bfloat16 = "BF16"

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .float32: 4
        case .float16, .bfloat16: 2
        }
    }

    /// Converts `count` little-endian elements at `source` (any alignment) into `destination`.
    func decode(_ source: UnsafeRawPointer, count: Int, into destination: UnsafeMutablePointer<Float>) {
        switch self {
        case .float32:
            if count > 0 { memcpy(destination, source, count * 4) }
        case .float16:
            for i in 0..<count {
                let bits = UInt16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                destination[i] = Float(Float16(bitPattern: bits))
            }
        case .bfloat16:
            for i in 0..<count {
                let bits = UInt16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                destination[i] = Float(bitPattern: UInt32(bits) << 16)
            }
        }
    }

    /// Decodes one element at `source`.
    func element(_ source: UnsafeRawPointer) -> Float {
        var value: Float = 0
        decode(source, count: 1, into: &value)
        return value
    }
}

/// Multiplies dimensions, returning `nil` on a negative dimension or on overflow.
func checkedProduct(_ dims: [Int]) -> Int? {
    var n = 1
    for d in dims {
        guard d >= 0 else { return nil }
        let (p, overflow) = n.multipliedReportingOverflow(by: d)
        if overflow { return nil }
        n = p
    }
    return n
}
