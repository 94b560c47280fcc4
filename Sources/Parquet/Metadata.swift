/// The Thrift structures of parquet.thrift that the reader needs (other fields are skipped), decoded from
/// the compact protocol. Required fields that are missing are errors.

/// `LogicalType` (a union): the annotations we act on, and the rest by field id.
enum LogicalTypeT: Equatable {
    case string, map, list, enumeration, date, unknown, json, bson, uuid, float16
    case decimal(scale: Int32, precision: Int32)
    case time(utc: Bool, unit: String)
    case timestamp(utc: Bool, unit: String)
    case integer(bitWidth: Int8, signed: Bool)
    case other(Int16)
}

struct SchemaElementT {
    var type: Int32?
    var typeLength: Int32?
    var repetition: Int32?
    var name: String?
    var numChildren: Int32?
    var convertedType: Int32?
    var scale: Int32?
    var precision: Int32?
    var logicalType: LogicalTypeT?
}

struct ColumnMetaDataT {
    var type: Int32?
    var encodings: [Int32] = []
    var path: [String] = []
    var codec: Int32?
    var numValues: Int64?
    var totalUncompressedSize: Int64?
    var totalCompressedSize: Int64?
    var dataPageOffset: Int64?
    var dictionaryPageOffset: Int64?
}

struct ColumnChunkT {
    var filePath: String?
    var metaData: ColumnMetaDataT?
    var encrypted = false
}

struct RowGroupT {
    var columns: [ColumnChunkT] = []
    var totalByteSize: Int64?
    var numRows: Int64?
}

struct FileMetaDataT {
    var version: Int32?
    var schema: [SchemaElementT] = []
    var numRows: Int64?
    var rowGroups: [RowGroupT] = []
    var keyValue: [(String, String?)] = []
    var createdBy: String?
}

struct DataPageHeaderT {
    var numValues: Int32 = 0
    var encoding: Int32 = 0
    var definitionLevelEncoding: Int32 = 3
    var repetitionLevelEncoding: Int32 = 3
}

struct DataPageHeaderV2T {
    var numValues: Int32 = 0
    var numNulls: Int32 = 0
    var numRows: Int32 = 0
    var encoding: Int32 = 0
    var definitionLevelsByteLength: Int32 = 0
    var repetitionLevelsByteLength: Int32 = 0
    var isCompressed = true
}

struct DictionaryPageHeaderT {
    var numValues: Int32 = 0
    var encoding: Int32 = 0
}

struct PageHeaderT {
    var type: Int32 = -1
    var uncompressedPageSize: Int32 = -1
    var compressedPageSize: Int32 = -1
    var dataPage: DataPageHeaderT?
    var dictionaryPage: DictionaryPageHeaderT?
    var dataPageV2: DataPageHeaderV2T?
}

extension CompactReader {
    /// `FileMetaData`.
    mutating func fileMetaData() throws -> FileMetaDataT {
        var m = FileMetaDataT()
        try readStruct { r, f in
            switch f.id {
            case 1:
                try r.expect(f, .i32, "FileMetaData.version")
                m.version = try r.i32()
            case 2:
                try r.expect(f, .list, "FileMetaData.schema")
                m.schema = try r.readList(of: .structure) { try $0.schemaElement() }
            case 3:
                try r.expect(f, .i64, "FileMetaData.num_rows")
                m.numRows = try r.i64()
            case 4:
                try r.expect(f, .list, "FileMetaData.row_groups")
                m.rowGroups = try r.readList(of: .structure) { try $0.rowGroup() }
            case 5:
                try r.expect(f, .list, "FileMetaData.key_value_metadata")
                m.keyValue = try r.readList(of: .structure) { try $0.keyValue() }
            case 6:
                try r.expect(f, .binary, "FileMetaData.created_by")
                m.createdBy = try r.string()
            default: return false
            }
            return true
        }
        guard m.version != nil else { throw Malformed("FileMetaData lacks its version") }
        guard m.numRows != nil else { throw Malformed("FileMetaData lacks num_rows") }
        guard !m.schema.isEmpty else { throw Malformed("FileMetaData has no schema") }
        return m
    }

    mutating func keyValue() throws -> (String, String?) {
        var key: String?
        var value: String?
        try readStruct { r, f in
            switch (f.id, f.type) {
            case (1, .binary): key = try r.string()
            case (2, .binary): value = try r.string()
            default: return false
            }
            return true
        }
        guard let key else { throw Malformed("KeyValue lacks its key") }
        return (key, value)
    }

    mutating func schemaElement() throws -> SchemaElementT {
        var e = SchemaElementT()
        try readStruct { r, f in
            switch f.id {
            case 1:
                try r.expect(f, .i32, "SchemaElement.type")
                e.type = try r.i32()
            case 2:
                try r.expect(f, .i32, "SchemaElement.type_length")
                e.typeLength = try r.i32()
            case 3:
                try r.expect(f, .i32, "SchemaElement.repetition_type")
                e.repetition = try r.i32()
            case 4:
                try r.expect(f, .binary, "SchemaElement.name")
                e.name = try r.string()
            case 5:
                try r.expect(f, .i32, "SchemaElement.num_children")
                e.numChildren = try r.i32()
            case 6:
                try r.expect(f, .i32, "SchemaElement.converted_type")
                e.convertedType = try r.i32()
            case 7:
                try r.expect(f, .i32, "SchemaElement.scale")
                e.scale = try r.i32()
            case 8:
                try r.expect(f, .i32, "SchemaElement.precision")
                e.precision = try r.i32()
            case 10:
                try r.expect(f, .structure, "SchemaElement.logicalType")
                e.logicalType = try r.logicalType()
            default: return false
            }
            return true
        }
        guard e.name != nil else { throw Malformed("SchemaElement lacks its name") }
        return e
    }

    /// `TimeUnit` (a union of empty structs).
    mutating func timeUnit() throws -> String {
        var unit = "UNKNOWN"
        try readStruct { r, f in
            switch f.id {
            case 1: unit = "MILLIS"
            case 2: unit = "MICROS"
            case 3: unit = "NANOS"
            default: break
            }
            try r.skip(f.type, inContainer: false)
            return true
        }
        return unit
    }

    mutating func logicalType() throws -> LogicalTypeT? {
        var result: LogicalTypeT?
        try readStruct { r, f in
            guard f.type == .structure else { return false }
            switch f.id {
            case 1: result = .string
            case 2: result = .map
            case 3: result = .list
            case 4: result = .enumeration
            case 5:
                var scale: Int32 = 0
                var precision: Int32 = 0
                try r.readStruct { r, f in
                    switch (f.id, f.type) {
                    case (1, .i32): scale = try r.i32()
                    case (2, .i32): precision = try r.i32()
                    default: return false
                    }
                    return true
                }
                result = .decimal(scale: scale, precision: precision)
                return true
            case 6: result = .date
            case 7, 8:
                var utc = false
                var unit = "UNKNOWN"
                try r.readStruct { r, f in
                    switch (f.id, f.type) {
                    case (1, .booleanTrue), (1, .booleanFalse): utc = f.bool
                    case (2, .structure): unit = try r.timeUnit()
                    default: return false
                    }
                    return true
                }
                result = f.id == 7 ? .time(utc: utc, unit: unit) : .timestamp(utc: utc, unit: unit)
                return true
            case 10:
                var width: Int8 = 0
                var signed = true
                try r.readStruct { r, f in
                    switch (f.id, f.type) {
                    case (1, .byte): width = try r.i8()
                    case (2, .booleanTrue), (2, .booleanFalse): signed = f.bool
                    default: return false
                    }
                    return true
                }
                result = .integer(bitWidth: width, signed: signed)
                return true
            case 11: result = .unknown
            case 12: result = .json
            case 13: result = .bson
            case 14: result = .uuid
            case 15: result = .float16
            default: result = .other(f.id)
            }
            return false  // the (empty) struct is skipped
        }
        return result
    }

    mutating func rowGroup() throws -> RowGroupT {
        var g = RowGroupT()
        try readStruct { r, f in
            switch f.id {
            case 1:
                try r.expect(f, .list, "RowGroup.columns")
                g.columns = try r.readList(of: .structure) { try $0.columnChunk() }
            case 2:
                try r.expect(f, .i64, "RowGroup.total_byte_size")
                g.totalByteSize = try r.i64()
            case 3:
                try r.expect(f, .i64, "RowGroup.num_rows")
                g.numRows = try r.i64()
            default: return false
            }
            return true
        }
        guard g.numRows != nil else { throw Malformed("RowGroup lacks num_rows") }
        return g
    }

    mutating func columnChunk() throws -> ColumnChunkT {
        var c = ColumnChunkT()
        try readStruct { r, f in
            switch f.id {
            case 1:
                try r.expect(f, .binary, "ColumnChunk.file_path")
                c.filePath = try r.string()
            case 3:
                try r.expect(f, .structure, "ColumnChunk.meta_data")
                c.metaData = try r.columnMetaData()
            case 8, 9:
                c.encrypted = true
                return false
            default: return false
            }
            return true
        }
        guard c.metaData != nil || c.encrypted else { throw Malformed("ColumnChunk lacks its meta_data") }
        return c
    }

    mutating func columnMetaData() throws -> ColumnMetaDataT {
        var m = ColumnMetaDataT()
        try readStruct { r, f in
            switch f.id {
            case 1:
                try r.expect(f, .i32, "ColumnMetaData.type")
                m.type = try r.i32()
            case 2:
                try r.expect(f, .list, "ColumnMetaData.encodings")
                m.encodings = try r.readList(of: .i32) { try $0.i32() }
            case 3:
                try r.expect(f, .list, "ColumnMetaData.path_in_schema")
                m.path = try r.readList(of: .binary) { try $0.string() }
            case 4:
                try r.expect(f, .i32, "ColumnMetaData.codec")
                m.codec = try r.i32()
            case 5:
                try r.expect(f, .i64, "ColumnMetaData.num_values")
                m.numValues = try r.i64()
            case 6:
                try r.expect(f, .i64, "ColumnMetaData.total_uncompressed_size")
                m.totalUncompressedSize = try r.i64()
            case 7:
                try r.expect(f, .i64, "ColumnMetaData.total_compressed_size")
                m.totalCompressedSize = try r.i64()
            case 9:
                try r.expect(f, .i64, "ColumnMetaData.data_page_offset")
                m.dataPageOffset = try r.i64()
            case 11:
                try r.expect(f, .i64, "ColumnMetaData.dictionary_page_offset")
                m.dictionaryPageOffset = try r.i64()
            default: return false
            }
            return true
        }
        guard m.type != nil, m.codec != nil, m.numValues != nil, m.totalCompressedSize != nil,
            m.dataPageOffset != nil
        else { throw Malformed("ColumnMetaData lacks a required field") }
        return m
    }

    mutating func pageHeader() throws -> PageHeaderT {
        var h = PageHeaderT()
        try readStruct { r, f in
            switch f.id {
            case 1:
                try r.expect(f, .i32, "PageHeader.type")
                h.type = try r.i32()
            case 2:
                try r.expect(f, .i32, "PageHeader.uncompressed_page_size")
                h.uncompressedPageSize = try r.i32()
            case 3:
                try r.expect(f, .i32, "PageHeader.compressed_page_size")
                h.compressedPageSize = try r.i32()
            case 5:
                try r.expect(f, .structure, "PageHeader.data_page_header")
                var d = DataPageHeaderT()
                var seen = false
                try r.readStruct { r, f in
                    switch (f.id, f.type) {
                    case (1, .i32):
                        d.numValues = try r.i32()
                        seen = true
                    case (2, .i32): d.encoding = try r.i32()
                    case (3, .i32): d.definitionLevelEncoding = try r.i32()
                    case (4, .i32): d.repetitionLevelEncoding = try r.i32()
                    default: return false
                    }
                    return true
                }
                guard seen else { throw Malformed("DataPageHeader lacks num_values") }
                h.dataPage = d
            case 7:
                try r.expect(f, .structure, "PageHeader.dictionary_page_header")
                var d = DictionaryPageHeaderT()
                var seen = false
                try r.readStruct { r, f in
                    switch (f.id, f.type) {
                    case (1, .i32):
                        d.numValues = try r.i32()
                        seen = true
                    case (2, .i32): d.encoding = try r.i32()
                    default: return false
                    }
                    return true
                }
                guard seen else { throw Malformed("DictionaryPageHeader lacks num_values") }
                h.dictionaryPage = d
            case 8:
                try r.expect(f, .structure, "PageHeader.data_page_header_v2")
                var d = DataPageHeaderV2T()
                var seen = false
                try r.readStruct { r, f in
                    switch (f.id, f.type) {
                    case (1, .i32):
                        d.numValues = try r.i32()
                        seen = true
                    case (2, .i32): d.numNulls = try r.i32()
                    case (3, .i32): d.numRows = try r.i32()
                    case (4, .i32): d.encoding = try r.i32()
                    case (5, .i32): d.definitionLevelsByteLength = try r.i32()
                    case (6, .i32): d.repetitionLevelsByteLength = try r.i32()
                    case (7, .booleanTrue), (7, .booleanFalse): d.isCompressed = f.bool
                    default: return false
                    }
                    return true
                }
                guard seen else { throw Malformed("DataPageHeaderV2 lacks num_values") }
                h.dataPageV2 = d
            default: return false
            }
            return true
        }
        guard h.type >= 0, h.uncompressedPageSize >= 0, h.compressedPageSize >= 0 else {
            throw Malformed("page header lacks its type or sizes, or has negative sizes")
        }
        return h
    }
}
