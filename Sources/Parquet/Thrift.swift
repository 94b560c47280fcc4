import Foundation

/// Thrift's compact protocol, as far as Parquet's footer and page headers need it.
///
/// A struct is a sequence of fields, each led by a byte whose high nibble is the field id's increase over
/// the previous field (0: a zigzag varint id follows) and whose low nibble is the type; type 0 ends the
/// struct. Integers are zigzag varints, binaries a varint length and bytes, lists a byte (size in the high
/// nibble, 15: a varint size follows; element type in the low nibble), booleans as fields live in the type
/// nibble (1 true, 2 false) and as list elements take one byte.
enum CompactType: UInt8 {
    case stop = 0
    case booleanTrue = 1
    case booleanFalse = 2
    case byte = 3
    case i16 = 4
    case i32 = 5
    case i64 = 6
    case double = 7
    case binary = 8
    case list = 9
    case set = 10
    case map = 11
    case structure = 12
    case uuid = 13
}

/// One field's id and type.
struct CompactField {
    let id: Int16
    let type: CompactType

    /// The value of a boolean field (carried in its type).
    var bool: Bool { type == .booleanTrue }
}

/// Decodes compact-protocol values from a byte range; every length is checked against the bytes left, and
/// nesting is limited so that hostile data cannot exhaust the stack.
struct CompactReader {
    var cursor: ByteCursor
    private var lastFieldIDs: [Int16] = []
    static let maxDepth = 64
    /// Lists and maps may not hold more elements (as Arrow's Thrift limits do): a byte can decode to a much
    /// larger structure, so the bytes left alone do not bound memory.
    static let maxElements = 1 << 20

    init(_ cursor: ByteCursor) { self.cursor = cursor }

    var position: Int { cursor.position }

    private mutating func zigzag() throws -> Int64 {
        let raw = try cursor.varint()
        return Int64(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
    }

    mutating func i64() throws -> Int64 { try zigzag() }

    mutating func i32() throws -> Int32 {
        let v = try zigzag()
        guard let narrow = Int32(exactly: v) else { throw Malformed("i32 value \(v) out of range") }
        return narrow
    }

    mutating func i16() throws -> Int16 {
        let v = try zigzag()
        guard let narrow = Int16(exactly: v) else { throw Malformed("i16 value \(v) out of range") }
        return narrow
    }

    mutating func i8() throws -> Int8 { Int8(bitPattern: try cursor.byte()) }

    mutating func double() throws -> Double {
        let bytes = try cursor.bytes(8)
        return Double(bitPattern: UInt64(littleEndian: bytes.loadUnaligned(as: UInt64.self)))
    }

    mutating func binary() throws -> UnsafeRawBufferPointer {
        let length = try cursor.varint()
        guard length <= UInt64(cursor.remaining) else {
            throw Malformed("binary of \(length) bytes but only \(cursor.remaining) remain")
        }
        return try cursor.bytes(Int(length))
    }

    mutating func string() throws -> String { String(decoding: try binary(), as: UTF8.self) }

    private func type(_ nibble: UInt8) throws -> CompactType {
        guard let t = CompactType(rawValue: nibble) else { throw Malformed("unknown thrift type \(nibble)") }
        return t
    }

    /// A list (or set) header: element type and count; the count is checked against the bytes left (every
    /// element takes at least one byte).
    mutating func listHeader() throws -> (CompactType, Int) {
        let b = try cursor.byte()
        var count = UInt64(b >> 4)
        if count == 15 { count = try cursor.varint() }
        let element = try type(b & 0x0F)
        guard count <= UInt64(cursor.remaining), count <= UInt64(Self.maxElements) else {
            throw Malformed("list of \(count) elements (\(cursor.remaining) bytes remain)")
        }
        return (element, Int(count))
    }

    /// Reads the fields of a struct, handing each to `body`, which reads the value it knows and returns true,
    /// or returns false to have it skipped.
    mutating func readStruct(_ body: (inout CompactReader, CompactField) throws -> Bool) throws {
        guard lastFieldIDs.count < Self.maxDepth else { throw Malformed("structures nested too deeply") }
        lastFieldIDs.append(0)
        defer { lastFieldIDs.removeLast() }
        while true {
            let b = try cursor.byte()
            if b == 0 { return }
            let t = try type(b & 0x0F)
            let delta = Int16(b >> 4)
            let id: Int16
            if delta != 0 {
                let (sum, overflow) = lastFieldIDs[lastFieldIDs.count - 1].addingReportingOverflow(delta)
                guard !overflow else { throw Malformed("field id overflows") }
                id = sum
            } else {
                id = try i16()
            }
            lastFieldIDs[lastFieldIDs.count - 1] = id
            let field = CompactField(id: id, type: t)
            if try !body(&self, field) { try skip(t, inContainer: false) }
        }
    }

    /// Reads a list whose elements `element` reads, checking the element type.
    mutating func readList<T>(of expected: CompactType, _ element: (inout CompactReader) throws -> T) throws -> [T] {
        let (t, count) = try listHeader()
        guard count == 0 || t == expected || (expected == .booleanTrue && t == .booleanFalse) else {
            throw Malformed("list of thrift type \(t) where \(expected) was expected")
        }
        var out: [T] = []
        out.reserveCapacity(min(count, 4096))
        for _ in 0..<count { out.append(try element(&self)) }
        return out
    }

    /// Checks that `field` has type `expected` (booleans: either boolean type).
    func expect(_ field: CompactField, _ expected: CompactType, _ name: String) throws {
        let matches =
            field.type == expected
            || (expected == .booleanTrue && field.type == .booleanFalse)
        guard matches else { throw Malformed("field \(name) has thrift type \(field.type), expected \(expected)") }
    }

    /// Skips one value of type `t` (booleans inside lists, sets and maps take a byte).
    mutating func skip(_ t: CompactType, inContainer: Bool) throws {
        switch t {
        case .stop: throw Malformed("unexpected stop")
        case .booleanTrue, .booleanFalse: if inContainer { _ = try cursor.byte() }
        case .byte: _ = try cursor.byte()
        case .i16, .i32, .i64: _ = try cursor.varint()
        case .double: try cursor.skip(8)
        case .uuid: try cursor.skip(16)
        case .binary: _ = try binary()
        case .list, .set:
            let (element, count) = try listHeader()
            try nested { r in for _ in 0..<count { try r.skip(element, inContainer: true) } }
        case .map:
            let count = try cursor.varint()
            guard count <= UInt64(cursor.remaining), count <= UInt64(Self.maxElements) else {
                throw Malformed("map of \(count) entries is too long")
            }
            if count > 0 {
                let b = try cursor.byte()
                let key = try type(b >> 4)
                let value = try type(b & 0x0F)
                try nested { r in
                    for _ in 0..<Int(count) {
                        try r.skip(key, inContainer: true)
                        try r.skip(value, inContainer: true)
                    }
                }
            }
        case .structure: try readStruct { _, _ in false }
        }
    }

    private mutating func nested(_ body: (inout CompactReader) throws -> Void) throws {
        guard lastFieldIDs.count < Self.maxDepth else { throw Malformed("structures nested too deeply") }
        lastFieldIDs.append(0)
        defer { lastFieldIDs.removeLast() }
        try body(&self)
    }
}

/// Encodes compact-protocol values (for the small writer behind `varaudit bench` and the tests).
struct CompactWriter {
    private(set) var bytes: [UInt8] = []
    private var lastFieldIDs: [Int16] = [0]

    mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    mutating func zigzag(_ value: Int64) { varint(UInt64(bitPattern: (value << 1) ^ (value >> 63))) }

    mutating func fieldHeader(_ id: Int16, _ type: CompactType) {
        let last = lastFieldIDs[lastFieldIDs.count - 1]
        let delta = Int(id) - Int(last)
        if delta > 0 && delta <= 15 {
            bytes.append(UInt8(delta) << 4 | type.rawValue)
        } else {
            bytes.append(type.rawValue)
            zigzag(Int64(id))
        }
        lastFieldIDs[lastFieldIDs.count - 1] = id
    }

    mutating func field(_ id: Int16, i32 value: Int32) {
        fieldHeader(id, .i32)
        zigzag(Int64(value))
    }

    mutating func field(_ id: Int16, i64 value: Int64) {
        fieldHeader(id, .i64)
        zigzag(value)
    }

    mutating func field(_ id: Int16, bool value: Bool) { fieldHeader(id, value ? .booleanTrue : .booleanFalse) }

    mutating func field(_ id: Int16, string value: String) {
        fieldHeader(id, .binary)
        varint(UInt64(value.utf8.count))
        bytes += value.utf8
    }

    mutating func listHeader(_ count: Int, _ element: CompactType) {
        if count < 15 {
            bytes.append(UInt8(count) << 4 | element.rawValue)
        } else {
            bytes.append(0xF0 | element.rawValue)
            varint(UInt64(count))
        }
    }

    mutating func field(_ id: Int16, i32List values: [Int32]) {
        fieldHeader(id, .list)
        listHeader(values.count, .i32)
        for v in values { zigzag(Int64(v)) }
    }

    mutating func field(_ id: Int16, stringList values: [String]) {
        fieldHeader(id, .list)
        listHeader(values.count, .binary)
        for v in values {
            varint(UInt64(v.utf8.count))
            bytes += v.utf8
        }
    }

    /// A struct field: `body` writes its fields.
    mutating func field(_ id: Int16, structure body: (inout CompactWriter) -> Void) {
        fieldHeader(id, .structure)
        structBody(body)
    }

    /// A list of structs.
    mutating func field(_ id: Int16, structList count: Int, _ body: (inout CompactWriter, Int) -> Void) {
        fieldHeader(id, .list)
        listHeader(count, .structure)
        for i in 0..<count { structBody { body(&$0, i) } }
    }

    /// The fields of a struct and its stop byte.
    mutating func structBody(_ body: (inout CompactWriter) -> Void) {
        lastFieldIDs.append(0)
        body(&self)
        bytes.append(0)
        lastFieldIDs.removeLast()
    }
}
