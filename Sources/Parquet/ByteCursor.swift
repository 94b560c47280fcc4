/// Reads little-endian values from a byte range, checking every read against the range's end.
struct ByteCursor {
    /// The bytes (borrowed: the caller keeps them alive while the cursor is used).
    let base: UnsafeRawBufferPointer
    /// Next byte to read.
    var position: Int
    /// One past the last readable byte.
    let end: Int

    init(_ base: UnsafeRawBufferPointer, from start: Int = 0, to end: Int? = nil) {
        self.base = base
        self.position = start
        self.end = end ?? base.count
    }

    var remaining: Int { end - position }
    var isAtEnd: Bool { position >= end }

    mutating func byte() throws -> UInt8 {
        guard position < end else { throw Malformed("unexpected end of data at byte \(position)") }
        let b = base[position]
        position += 1
        return b
    }

    /// Ensures `count` more bytes are readable.
    func need(_ count: Int, _ what: @autoclosure () -> String) throws {
        guard count >= 0, count <= end - position else {
            throw Malformed("\(what()) needs \(count) bytes but only \(max(0, end - position)) remain")
        }
    }

    mutating func skip(_ count: Int) throws {
        try need(count, "skipping")
        position += count
    }

    /// The next `count` bytes as a buffer (no copy), advancing past them.
    mutating func bytes(_ count: Int) throws -> UnsafeRawBufferPointer {
        try need(count, "a field")
        let slice = UnsafeRawBufferPointer(rebasing: base[position..<(position + count)])
        position += count
        return slice
    }

    mutating func uint32LE() throws -> UInt32 {
        try need(4, "a 4-byte length")
        let v = base.loadUnaligned(fromByteOffset: position, as: UInt32.self)
        position += 4
        return UInt32(littleEndian: v)
    }

    /// An unsigned LEB128 varint of at most 10 bytes.
    mutating func varint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let b = try byte()
            if shift == 63 && b > 1 { throw Malformed("varint overflows 64 bits at byte \(position - 1)") }
            result |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { return result }
            shift += 7
            if shift > 63 { throw Malformed("varint longer than 10 bytes at byte \(position)") }
        }
    }
}
