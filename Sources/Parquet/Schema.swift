/// Parquet's physical (storage) types.
public enum ParquetPhysicalType: String, Sendable, CaseIterable {
    case boolean = "BOOLEAN"
    case int32 = "INT32"
    case int64 = "INT64"
    case int96 = "INT96"
    case float = "FLOAT"
    case double = "DOUBLE"
    case byteArray = "BYTE_ARRAY"
    case fixedLenByteArray = "FIXED_LEN_BYTE_ARRAY"

    init?(code: Int32) {
        switch code {
        case 0: self = .boolean
        case 1: self = .int32
        case 2: self = .int64
        case 3: self = .int96
        case 4: self = .float
        case 5: self = .double
        case 6: self = .byteArray
        case 7: self = .fixedLenByteArray
        default: return nil
        }
    }
}

/// The page compression codecs of the format (the reader decompresses uncompressed, snappy, gzip and zstd).
public enum ParquetCompression: String, Sendable, CaseIterable {
    case uncompressed = "UNCOMPRESSED"
    case snappy = "SNAPPY"
    case gzip = "GZIP"
    case lzo = "LZO"
    case brotli = "BROTLI"
    case lz4 = "LZ4"
    case zstd = "ZSTD"
    case lz4Raw = "LZ4_RAW"

    init?(code: Int32) {
        switch code {
        case 0: self = .uncompressed
        case 1: self = .snappy
        case 2: self = .gzip
        case 3: self = .lzo
        case 4: self = .brotli
        case 5: self = .lz4
        case 6: self = .zstd
        case 7: self = .lz4Raw
        default: return nil
        }
    }

    var code: Int32 {
        switch self {
        case .uncompressed: 0
        case .snappy: 1
        case .gzip: 2
        case .lzo: 3
        case .brotli: 4
        case .lz4: 5
        case .zstd: 6
        case .lz4Raw: 7
        }
    }

    /// Whether this reader can decompress it.
    public var isSupported: Bool { [.uncompressed, .snappy, .gzip, .zstd].contains(self) }
}

/// The name of an `Encoding` code.
func encodingName(_ code: Int32) -> String {
    switch code {
    case 0: "PLAIN"
    case 2: "PLAIN_DICTIONARY"
    case 3: "RLE"
    case 4: "BIT_PACKED"
    case 5: "DELTA_BINARY_PACKED"
    case 6: "DELTA_LENGTH_BYTE_ARRAY"
    case 7: "DELTA_BYTE_ARRAY"
    case 8: "RLE_DICTIONARY"
    case 9: "BYTE_STREAM_SPLIT"
    default: "ENCODING(\(code))"
    }
}

/// What the reader hands out for a column: the Swift type of `ParquetValues`' case.
public enum ParquetValueKind: String, Sendable {
    /// `ParquetValues.boolean`.
    case boolean
    /// `ParquetValues.int32`: INT32 (also INT(8|16|32, signed), INT(8|16, unsigned), DATE as days, TIME(MILLIS)).
    case int32
    /// `ParquetValues.int64`: INT64 (also TIMESTAMP and TIME in their unit), INT(32, unsigned) widened, and
    /// INT96 timestamps as nanoseconds since the epoch.
    case int64
    /// `ParquetValues.uint64`: INT(64, unsigned).
    case uint64
    /// `ParquetValues.float`: FLOAT, and FLOAT16 widened.
    case float
    /// `ParquetValues.double`: DOUBLE.
    case double
    /// `ParquetValues.string`: BYTE_ARRAY annotated STRING/UTF8, ENUM or JSON.
    case string
    /// `ParquetValues.bytes`: other BYTE_ARRAY and FIXED_LEN_BYTE_ARRAY (DECIMAL, UUID: the stored bytes).
    case bytes
}

/// A top-level scalar column of a file.
public struct ParquetColumnSchema: Sendable, Equatable {
    /// The column name.
    public let name: String
    /// How the values are stored.
    public let physicalType: ParquetPhysicalType
    /// The logical type (or, in older files, the converted type) in the format's terms, e.g. `STRING`,
    /// `INT(8, signed)`, `DATE`, `TIMESTAMP(MICROS, UTC)`, `DECIMAL(9, 2)`; nil when there is none.
    public let logicalType: String?
    /// Whether values may be null (repetition OPTIONAL).
    public let nullable: Bool
    /// The byte width of FIXED_LEN_BYTE_ARRAY values.
    public let typeLength: Int?
    /// The kind of values the reader returns for it.
    public let valueKind: ParquetValueKind
    /// Position of the column's chunk among the leaf columns of each row group.
    let leafIndex: Int
}

/// Logical type, as a name, and the value kind of a leaf.
func describe(_ e: SchemaElementT, physical: ParquetPhysicalType) -> (String?, ParquetValueKind) {
    var logical: String?
    var unsignedWidth: Int?
    var isString = false
    var isFloat16 = false
    switch e.logicalType {
    case .string?: (logical, isString) = ("STRING", true)
    case .enumeration?: (logical, isString) = ("ENUM", true)
    case .json?: (logical, isString) = ("JSON", true)
    case .bson?: logical = "BSON"
    case .uuid?: logical = "UUID"
    case .date?: logical = "DATE"
    case .float16?: (logical, isFloat16) = ("FLOAT16", true)
    case .unknown?: logical = "UNKNOWN"
    case .map?: logical = "MAP"
    case .list?: logical = "LIST"
    case .decimal(let scale, let precision)?: logical = "DECIMAL(\(precision), \(scale))"
    case .time(let utc, let unit)?: logical = "TIME(\(unit)\(utc ? ", UTC" : ""))"
    case .timestamp(let utc, let unit)?: logical = "TIMESTAMP(\(unit)\(utc ? ", UTC" : ""))"
    case .integer(let width, let signed)?:
        logical = "INT(\(width), \(signed ? "signed" : "unsigned"))"
        if !signed { unsignedWidth = Int(width) }
    case .other(let id)?: logical = "LOGICAL(\(id))"
    case nil:
        switch e.convertedType {
        case 0?: (logical, isString) = ("STRING", true)
        case 4?: (logical, isString) = ("ENUM", true)
        case 5?: logical = "DECIMAL(\(e.precision ?? 0), \(e.scale ?? 0))"
        case 6?: logical = "DATE"
        case 7?: logical = "TIME(MILLIS, UTC)"
        case 8?: logical = "TIME(MICROS, UTC)"
        case 9?: logical = "TIMESTAMP(MILLIS, UTC)"
        case 10?: logical = "TIMESTAMP(MICROS, UTC)"
        case 11?: (logical, unsignedWidth) = ("INT(8, unsigned)", 8)
        case 12?: (logical, unsignedWidth) = ("INT(16, unsigned)", 16)
        case 13?: (logical, unsignedWidth) = ("INT(32, unsigned)", 32)
        case 14?: (logical, unsignedWidth) = ("INT(64, unsigned)", 64)
        case 15?: logical = "INT(8, signed)"
        case 16?: logical = "INT(16, signed)"
        case 17?: logical = "INT(32, signed)"
        case 18?: logical = "INT(64, signed)"
        case 19?: (logical, isString) = ("JSON", true)
        case 20?: logical = "BSON"
        case 21?: logical = "INTERVAL"
        case let code?: logical = "CONVERTED(\(code))"
        case nil: break
        }
    }
    let kind: ParquetValueKind
    switch physical {
    case .boolean: kind = .boolean
    case .int32: kind = unsignedWidth == 32 ? .int64 : .int32
    case .int64: kind = unsignedWidth == 64 ? .uint64 : .int64
    case .int96: kind = .int64
    case .float: kind = .float
    case .double: kind = .double
    case .byteArray: kind = isString ? .string : .bytes
    case .fixedLenByteArray: kind = isFloat16 && e.typeLength == 2 ? .float : .bytes
    }
    return (logical, kind)
}

/// One leaf of the schema tree (a column chunk in every row group).
struct Leaf {
    let path: [String]
    let element: SchemaElementT
    let maxDefinitionLevel: Int
    let maxRepetitionLevel: Int
}

/// The leaves in file order, the top-level scalar columns and the top-level names that are not scalar.
func resolveSchema(_ elements: [SchemaElementT]) throws -> (
    leaves: [Leaf], columns: [ParquetColumnSchema], skipped: [String]
) {
    var leaves: [Leaf] = []
    var next = 1

    /// Walks the element at `next` and its subtree.
    func walk(path: [String], definition: Int, repetition: Int, depth: Int) throws {
        guard depth < 100 else { throw Malformed("schema nested more than 100 levels deep") }
        guard next < elements.count else {
            throw Malformed("schema ends early: element \(next) is missing (num_children too large)")
        }
        let e = elements[next]
        next += 1
        let name = e.name ?? ""
        var d = definition
        var r = repetition
        switch e.repetition {
        case 1?: d += 1
        case 2?:
            d += 1
            r += 1
        default: break
        }
        let children = Int(e.numChildren ?? 0)
        if e.type == nil || children > 0 {
            guard children >= 0, children <= elements.count - next else {
                throw Malformed("schema element '\(name)' claims \(children) children")
            }
            for _ in 0..<children {
                try walk(path: path + [name], definition: d, repetition: r, depth: depth + 1)
            }
        } else {
            leaves.append(Leaf(path: path + [name], element: e, maxDefinitionLevel: d, maxRepetitionLevel: r))
        }
    }

    guard let root = elements.first else { throw Malformed("empty schema") }
    let rootChildren = Int(root.numChildren ?? 0)
    guard rootChildren >= 0, rootChildren <= elements.count - 1 else {
        throw Malformed("schema root claims \(rootChildren) children but there are \(elements.count - 1) elements")
    }
    var columns: [ParquetColumnSchema] = []
    var skipped: [String] = []
    for _ in 0..<rootChildren {
        let first = leaves.count
        guard next < elements.count else { throw Malformed("schema ends early: the root's children are missing") }
        let element = elements[next]
        try walk(path: [], definition: 0, repetition: 0, depth: 1)
        let name = element.name ?? ""
        let isScalarLeaf =
            leaves.count == first + 1 && leaves[first].path == [name] && leaves[first].maxRepetitionLevel == 0
        guard isScalarLeaf, let code = element.type else {
            skipped.append(name)
            continue
        }
        guard let physical = ParquetPhysicalType(code: code) else {
            throw Malformed("column '\(name)' has unknown physical type \(code)")
        }
        if physical == .fixedLenByteArray {
            guard let length = element.typeLength, length > 0 else {
                throw Malformed("column '\(name)' is FIXED_LEN_BYTE_ARRAY without a valid type_length")
            }
        }
        let (logical, kind) = describe(element, physical: physical)
        columns.append(
            ParquetColumnSchema(
                name: name, physicalType: physical, logicalType: logical, nullable: element.repetition == 1,
                typeLength: physical == .fixedLenByteArray ? element.typeLength.map(Int.init) : nil,
                valueKind: kind, leafIndex: first))
    }
    guard next == elements.count else {
        throw Malformed("schema has \(elements.count - next) elements outside the root's children")
    }
    return (leaves, columns, skipped)
}
