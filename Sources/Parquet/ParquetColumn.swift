import Checkpoints
import Foundation

/// The values of one column in one row group, row by row, nil where the value is null.
public enum ParquetValues: Sendable, Equatable {
    case boolean([Bool?])
    case int32([Int32?])
    case int64([Int64?])
    case uint64([UInt64?])
    case float([Float?])
    case double([Double?])
    case string([String?])
    case bytes([[UInt8]?])

    /// Number of rows.
    public var count: Int {
        switch self {
        case .boolean(let v): v.count
        case .int32(let v): v.count
        case .int64(let v): v.count
        case .uint64(let v): v.count
        case .float(let v): v.count
        case .double(let v): v.count
        case .string(let v): v.count
        case .bytes(let v): v.count
        }
    }

    /// Whether row `i` is null.
    public func isNull(_ i: Int) -> Bool {
        switch self {
        case .boolean(let v): v[i] == nil
        case .int32(let v): v[i] == nil
        case .int64(let v): v[i] == nil
        case .uint64(let v): v[i] == nil
        case .float(let v): v[i] == nil
        case .double(let v): v[i] == nil
        case .string(let v): v[i] == nil
        case .bytes(let v): v[i] == nil
        }
    }
}

/// One column of a row group: its schema and its values.
public struct ParquetColumn: Sendable {
    public let schema: ParquetColumnSchema
    public let values: ParquetValues

    public var name: String { schema.name }
    public var count: Int { values.count }

    /// Row `i` as JSON: strings, integers (dates, times and timestamps as the stored integer), numbers
    /// (a float by its shortest decimal form; NaN and infinities as null), booleans, null; bytes as a string
    /// when they are UTF-8, otherwise as base64.
    public func json(at i: Int) -> JSONValue {
        switch values {
        case .boolean(let v): return v[i].map { .bool($0) } ?? .null
        case .int32(let v): return v[i].map { .int(Int($0)) } ?? .null
        case .int64(let v): return v[i].map { .int(Int($0)) } ?? .null
        case .uint64(let v):
            guard let x = v[i] else { return .null }
            return Int(exactly: x).map { .int($0) } ?? .double(Double(x))
        case .float(let v):
            guard let x = v[i], x.isFinite else { return .null }
            return .double(Double(x.description) ?? Double(x))
        case .double(let v):
            guard let x = v[i], x.isFinite else { return .null }
            return .double(x)
        case .string(let v): return v[i].map { .string($0) } ?? .null
        case .bytes(let v):
            guard let b = v[i] else { return .null }
            return .string(bytesText(b))
        }
    }
}

/// UTF-8 bytes as their text, others as base64.
func bytesText(_ bytes: [UInt8]) -> String {
    if let s = String(validating: bytes, as: UTF8.self) { return s }
    return Data(bytes).base64EncodedString()
}

/// Row `row` of `columns` as a JSON object keyed by column name (see `ParquetColumn.json(at:)`).
public func parquetRowObject(_ columns: [ParquetColumn], row: Int) -> JSONValue {
    var object: [String: JSONValue] = [:]
    for c in columns { object[c.name] = c.json(at: row) }
    return .object(object)
}

/// Writes rows of columns as compact JSON object text (keys in the order of `columns`), the same values as
/// `parquetRowObject`; fast enough for importing millions of metadata rows.
public struct ParquetJSONRowWriter {
    private let columns: [ParquetColumn]
    private let keys: [[UInt8]]

    public init(columns: [ParquetColumn]) {
        self.columns = columns
        keys = columns.map { c in
            var key: [UInt8] = []
            appendJSONString(c.name, to: &key)
            key.append(UInt8(ascii: ":"))
            return key
        }
    }

    /// Appends row `row` as `{"name":value,...}` to `out`.
    public func write(row: Int, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "{"))
        for (k, c) in columns.enumerated() {
            if k > 0 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: keys[k])
            switch c.values {
            case .boolean(let v):
                if let x = v[row] { appendASCII(x ? "true" : "false", to: &out) } else { appendNull(&out) }
            case .int32(let v):
                if let x = v[row] { appendInteger(Int64(x), to: &out) } else { appendNull(&out) }
            case .int64(let v):
                if let x = v[row] { appendInteger(x, to: &out) } else { appendNull(&out) }
            case .uint64(let v):
                if let x = v[row] {
                    if let i = Int64(exactly: x) {
                        appendInteger(i, to: &out)
                    } else {
                        appendASCII(Double(x).description, to: &out)
                    }
                } else {
                    appendNull(&out)
                }
            case .float(let v):
                if let x = v[row], x.isFinite { appendASCII(x.description, to: &out) } else { appendNull(&out) }
            case .double(let v):
                if let x = v[row], x.isFinite { appendASCII(x.description, to: &out) } else { appendNull(&out) }
            case .string(let v):
                if let x = v[row] { appendJSONString(x, to: &out) } else { appendNull(&out) }
            case .bytes(let v):
                if let x = v[row] { appendJSONString(bytesText(x), to: &out) } else { appendNull(&out) }
            }
        }
        out.append(UInt8(ascii: "}"))
    }
}

private func appendNull(_ out: inout [UInt8]) { appendASCII("null", to: &out) }

private func appendASCII(_ s: String, to out: inout [UInt8]) { out.append(contentsOf: s.utf8) }

/// Decimal digits of `value`.
private func appendInteger(_ value: Int64, to out: inout [UInt8]) {
    if value == 0 {
        out.append(UInt8(ascii: "0"))
        return
    }
    var magnitude = value.magnitude
    withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
        var n = 0
        while magnitude > 0 {
            digits[n] = UInt8(ascii: "0") + UInt8(magnitude % 10)
            magnitude /= 10
            n += 1
        }
        if value < 0 { out.append(UInt8(ascii: "-")) }
        while n > 0 {
            n -= 1
            out.append(digits[n])
        }
    }
}

private let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

/// A JSON string literal of `text`: quotes, backslashes and control characters escaped.
func appendJSONString(_ text: String, to out: inout [UInt8]) {
    var text = text
    text.withUTF8 { appendJSONString($0, to: &out) }
}

/// A JSON string literal of UTF-8 bytes: quotes, backslashes and control characters escaped; runs of other
/// bytes are copied at once.
func appendJSONString(_ utf8: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
    out.append(UInt8(ascii: "\""))
    var runStart = 0
    for i in 0..<utf8.count {
        let b = utf8[i]
        guard b < 0x20 || b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") else { continue }
        if runStart < i { out.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<i])) }
        runStart = i + 1
        out.append(UInt8(ascii: "\\"))
        switch b {
        case UInt8(ascii: "\""): out.append(UInt8(ascii: "\""))
        case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\"))
        case 0x0A: out.append(UInt8(ascii: "n"))
        case 0x0D: out.append(UInt8(ascii: "r"))
        case 0x09: out.append(UInt8(ascii: "t"))
        default:
            out.append(contentsOf: [UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0")])
            out.append(hexDigits[Int(b >> 4)])
            out.append(hexDigits[Int(b & 0x0F)])
        }
    }
    if runStart < utf8.count { out.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart...])) }
    out.append(UInt8(ascii: "\""))
}
