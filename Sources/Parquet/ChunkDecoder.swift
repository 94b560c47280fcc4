/// Decodes the pages of one column chunk of a top-level scalar column: an optional dictionary page, then
/// data pages v1 or v2 with definition levels (for nullable columns) and values encoded PLAIN,
/// PLAIN_DICTIONARY / RLE_DICTIONARY, RLE (booleans) or BYTE_STREAM_SPLIT.
struct ChunkDecoder {
    let column: ParquetColumnSchema
    let typeLength: Int
    let codec: ParquetCompression
    let rows: Int
    let maxDefinitionLevel: Int
    let maxPageBytes: Int

    /// Values of a row group without rows.
    static func empty(_ column: ParquetColumnSchema) throws -> ParquetValues {
        switch column.valueKind {
        case .boolean: .boolean([])
        case .int32: .int32([])
        case .int64: .int64([])
        case .uint64: .uint64([])
        case .float: .float([])
        case .double: .double([])
        case .string: .string([])
        case .bytes: .bytes([])
        }
    }

    func decode(_ chunk: UnsafeRawBufferPointer) throws -> ParquetValues {
        let width = typeLength
        switch (column.physicalType, column.valueKind) {
        case (.boolean, _):
            return .boolean(
                try pages(chunk, width: nil, plain: decodePlainBooleans) { cursor, count, out in
                    let length = Int(try cursor.uint32LE())
                    try cursor.need(length, "RLE-encoded booleans")
                    var sub = ByteCursor(cursor.base, from: cursor.position, to: cursor.position + length)
                    cursor.position += length
                    var bits: [UInt8] = []
                    try decodeHybrid(&sub, bitWidth: 1, count: count, into: &bits)
                    out.append(contentsOf: bits.lazy.map { $0 == 1 })
                })
        case (.int32, .int64):  // INT(32, unsigned), widened
            return .int64(
                try pages(chunk, width: 4) { cursor, count, out in
                    var raw: [UInt32] = []
                    try decodePlainFixed(&cursor, count: count, into: &raw)
                    out.append(contentsOf: raw.lazy.map { Int64($0) })
                })
        case (.int32, _):
            return .int32(try pages(chunk, width: 4) { try decodePlainFixed(&$0, count: $1, into: &$2) })
        case (.int64, .uint64):
            return .uint64(try pages(chunk, width: 8) { try decodePlainFixed(&$0, count: $1, into: &$2) })
        case (.int64, _):
            return .int64(try pages(chunk, width: 8) { try decodePlainFixed(&$0, count: $1, into: &$2) })
        case (.int96, _):
            return .int64(
                try pages(chunk, width: 12) { cursor, count, out in
                    try decodePlainFixedLength(&cursor, count: count, width: 12, into: &out, int96Nanoseconds)
                })
        case (.float, _):
            return .float(
                try pages(chunk, width: 4) { cursor, count, out in
                    var raw: [UInt32] = []
                    try decodePlainFixed(&cursor, count: count, into: &raw)
                    out.append(contentsOf: raw.lazy.map { Float(bitPattern: $0) })
                })
        case (.double, _):
            return .double(
                try pages(chunk, width: 8) { cursor, count, out in
                    var raw: [UInt64] = []
                    try decodePlainFixed(&cursor, count: count, into: &raw)
                    out.append(contentsOf: raw.lazy.map { Double(bitPattern: $0) })
                })
        case (.byteArray, .string):
            return .string(
                try pages(chunk, width: nil) { cursor, count, out in
                    try decodePlainByteArrays(&cursor, count: count, into: &out) { String(decoding: $0, as: UTF8.self) }
                })
        case (.byteArray, _):
            return .bytes(
                try pages(chunk, width: nil) { cursor, count, out in
                    try decodePlainByteArrays(&cursor, count: count, into: &out) { Array($0) }
                })
        case (.fixedLenByteArray, .float):  // FLOAT16
            return .float(
                try pages(chunk, width: 2) { cursor, count, out in
                    var raw: [UInt16] = []
                    try decodePlainFixed(&cursor, count: count, into: &raw)
                    out.append(contentsOf: raw.lazy.map { Float(Float16(bitPattern: $0)) })
                })
        case (.fixedLenByteArray, _):
            return .bytes(
                try pages(chunk, width: width) { cursor, count, out in
                    try decodePlainFixedLength(&cursor, count: count, width: width, into: &out) { Array($0) }
                })
        }
    }

    /// Walks the pages of `chunk`, decoding values of type `T` with `plain` (PLAIN values, also used for the
    /// dictionary), `rle` (RLE-encoded values, booleans only), and, for fixed-width types of `width` bytes,
    /// BYTE_STREAM_SPLIT through `plain`.
    private func pages<T>(
        _ chunk: UnsafeRawBufferPointer, width: Int?,
        plain: (inout ByteCursor, Int, inout [T]) throws -> Void,
        rle: ((inout ByteCursor, Int, inout [T]) throws -> Void)? = nil
    ) throws -> [T?] {
        var out: [T?] = []
        out.reserveCapacity(min(rows, 1 << 20))
        var dictionary: [T]?
        var values: [T] = []
        var levels: [UInt8] = []
        var indices: [UInt32] = []
        var position = 0
        var pageNumber = 0
        while out.count < rows {
            guard position < chunk.count else {
                throw Malformed("the chunk ends after \(out.count) of \(rows) values")
            }
            var reader = CompactReader(ByteCursor(chunk, from: position))
            let header: PageHeaderT
            do {
                header = try reader.pageHeader()
            } catch let error as Malformed {
                throw Malformed("page \(pageNumber): corrupt page header: \(error)")
            }
            position = reader.position
            let compressed = Int(header.compressedPageSize)
            let uncompressed = Int(header.uncompressedPageSize)
            guard compressed <= chunk.count - position else {
                throw Malformed(
                    "page \(pageNumber): its \(compressed) bytes run past the end of the chunk "
                        + "(\(chunk.count - position) left)")
            }
            guard uncompressed <= maxPageBytes else {
                throw Malformed(
                    "page \(pageNumber): declares \(uncompressed) bytes, over the limit of \(maxPageBytes)")
            }
            let page = UnsafeRawBufferPointer(rebasing: chunk[position..<(position + compressed)])
            position += compressed
            defer { pageNumber += 1 }
            let count: Int
            let encoding: Int32
            let data: [UInt8]
            var valuesStart = 0
            levels.removeAll(keepingCapacity: true)
            switch header.type {
            case 2:  // DICTIONARY_PAGE
                guard let d = header.dictionaryPage else { throw Malformed("page \(pageNumber): no dictionary header") }
                guard dictionary == nil, out.isEmpty else {
                    throw Malformed("page \(pageNumber): a dictionary page after the first page")
                }
                guard d.encoding == 0 || d.encoding == 2 else {
                    throw Malformed("page \(pageNumber): dictionary encoded \(encodingName(d.encoding))")
                }
                guard d.numValues >= 0 else { throw Malformed("page \(pageNumber): negative dictionary size") }
                let bytes = try decompress(codec, page, size: uncompressed)
                var entries: [T] = []
                try bytes.withUnsafeBytes { raw in
                    var c = ByteCursor(raw)
                    try plain(&c, Int(d.numValues), &entries)
                }
                dictionary = entries
                continue
            case 0:  // DATA_PAGE
                guard let d = header.dataPage else { throw Malformed("page \(pageNumber): no data page header") }
                count = Int(d.numValues)
                encoding = d.encoding
                try checkCount(count, page: pageNumber, done: out.count)
                data = try decompress(codec, page, size: uncompressed)
                if maxDefinitionLevel > 0 {
                    guard d.definitionLevelEncoding == 3 else {
                        throw Malformed(
                            "page \(pageNumber): definition levels encoded "
                                + "\(encodingName(d.definitionLevelEncoding)) are not supported")
                    }
                    try data.withUnsafeBytes { raw in
                        var c = ByteCursor(raw)
                        let length = Int(try c.uint32LE())
                        try c.need(length, "definition levels")
                        var sub = ByteCursor(raw, from: c.position, to: c.position + length)
                        try decodeHybrid(&sub, bitWidth: 1, count: count, into: &levels)
                        valuesStart = c.position + length
                    }
                }
            case 3:  // DATA_PAGE_V2
                guard let d = header.dataPageV2 else { throw Malformed("page \(pageNumber): no v2 page header") }
                count = Int(d.numValues)
                encoding = d.encoding
                try checkCount(count, page: pageNumber, done: out.count)
                let repLength = Int(d.repetitionLevelsByteLength)
                let defLength = Int(d.definitionLevelsByteLength)
                guard repLength >= 0, defLength >= 0, repLength + defLength <= compressed,
                    repLength + defLength <= uncompressed
                else { throw Malformed("page \(pageNumber): level lengths exceed the page") }
                if maxDefinitionLevel > 0 {
                    var sub = ByteCursor(page, from: repLength, to: repLength + defLength)
                    try decodeHybrid(&sub, bitWidth: 1, count: count, into: &levels)
                }
                let body = UnsafeRawBufferPointer(rebasing: page[(repLength + defLength)...])
                let size = uncompressed - repLength - defLength
                data = d.isCompressed ? try decompress(codec, body, size: size) : Array(body)
            default:  // INDEX_PAGE and pages we do not know: skipped
                continue
            }
            var present = count
            if maxDefinitionLevel > 0 {
                present = 0
                for level in levels {
                    guard level <= 1 else { throw Malformed("page \(pageNumber): definition level \(level) > 1") }
                    present += Int(level)
                }
            }
            values.removeAll(keepingCapacity: true)
            try data.withUnsafeBytes { raw in
                var c = ByteCursor(raw, from: min(valuesStart, raw.count))
                switch encoding {
                case 0:
                    try plain(&c, present, &values)
                case 2, 8:
                    guard let dictionary else {
                        throw Malformed("page \(pageNumber): dictionary-encoded values without a dictionary page")
                    }
                    guard present > 0 else { break }
                    let bitWidth = Int(try c.byte())
                    indices.removeAll(keepingCapacity: true)
                    try decodeHybrid(&c, bitWidth: bitWidth, count: present, into: &indices)
                    values.reserveCapacity(present)
                    for index in indices {
                        guard Int(index) < dictionary.count else {
                            throw Malformed(
                                "page \(pageNumber): dictionary index \(index) out of range 0..<\(dictionary.count)")
                        }
                        values.append(dictionary[Int(index)])
                    }
                case 3 where rle != nil:
                    try rle?(&c, present, &values)
                case 9 where width != nil:
                    let w = width ?? 0
                    let plainBytes = try byteStreamSplitToPlain(&c, count: present, width: w)
                    try plainBytes.withUnsafeBytes { p in
                        var pc = ByteCursor(p)
                        try plain(&pc, present, &values)
                    }
                default:
                    throw Malformed(
                        "page \(pageNumber): values encoded \(encodingName(encoding)) are not supported "
                            + "for \(column.physicalType.rawValue)")
                }
            }
            guard values.count == present else {
                throw Malformed("page \(pageNumber): decoded \(values.count) of \(present) values")
            }
            if maxDefinitionLevel == 0 {
                for v in values { out.append(v) }
            } else {
                var j = 0
                for level in levels {
                    if level == 1 {
                        out.append(values[j])
                        j += 1
                    } else {
                        out.append(nil)
                    }
                }
            }
        }
        return out
    }

    private func checkCount(_ count: Int, page: Int, done: Int) throws {
        guard count >= 0, count <= rows - done else {
            throw Malformed("page \(page): \(count) values, but only \(rows - done) of the row group's \(rows) remain")
        }
    }
}
