import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Bounds that keep a hostile or corrupt file from making the reader allocate without limit.
public struct ParquetLimits: Sendable {
    /// The footer (file metadata) may not be longer.
    public var maxFooterBytes = 64 << 20
    /// One column chunk (the compressed bytes of one column in one row group) may not be longer.
    public var maxChunkBytes = 1 << 30
    /// One page may not declare a larger decompressed size.
    public var maxPageBytes = 1 << 30
    /// One row group may not hold more rows.
    public var maxRowsPerRowGroup = 1 << 25

    public init() {}
}

/// A column chunk as the footer describes it.
public struct ParquetChunkInfo: Sendable {
    /// The column's path (dotted for nested columns).
    public let path: String
    /// Its compression codec (`UNCOMPRESSED`, `SNAPPY`, ...; `CODEC(n)` for unknown codes).
    public let compression: String
    /// The encodings its pages use.
    public let encodings: [String]
    /// Values (for a top-level scalar column: rows).
    public let values: Int
    /// Bytes in the file.
    public let compressedBytes: Int
    /// Bytes once decompressed.
    public let uncompressedBytes: Int
}

/// A row group as the footer describes it.
public struct ParquetRowGroupInfo: Sendable {
    /// Rows.
    public let rows: Int
    /// Uncompressed bytes of all its columns, as the writer counted them.
    public let totalByteSize: Int
    /// Its column chunks, every leaf column (nested ones too) in file order.
    public let columns: [ParquetChunkInfo]

    /// Bytes of its column chunks in the file.
    public var compressedBytes: Int { columns.reduce(0) { $0 + $1.compressedBytes } }
}

/// A Parquet file, as pyarrow, pandas and clip-retrieval write it: the footer is read when it is opened; row
/// groups are read one at a time, and only the columns asked for. Top-level scalar columns are read; nested
/// ones (lists, structs, maps) are listed in `skippedColumns`. Every offset and length is checked against the
/// file size and the `ParquetLimits`; errors name the file.
public final class ParquetFile {
    /// The file.
    public let url: URL
    /// Its size in bytes.
    public let fileSize: Int
    /// The top-level scalar columns, in file order.
    public let schema: [ParquetColumnSchema]
    /// Top-level columns that are not scalar (lists, structs, maps, repeated fields): they cannot be read.
    public let skippedColumns: [String]
    /// The row groups.
    public let rowGroups: [ParquetRowGroupInfo]
    /// Total rows.
    public let rowCount: Int
    /// The writer (`created_by`), e.g. `parquet-cpp-arrow version 15.0.0`.
    public let createdBy: String?
    /// The format version in the footer (1 or 2).
    public let formatVersion: Int
    /// The footer's key-value metadata (e.g. `ARROW:schema`, `pandas`).
    public let keyValueMetadata: [String: String]
    /// The limits in force.
    public let limits: ParquetLimits

    private let descriptor: Int32
    private let leaves: [Leaf]
    private let groups: [RowGroupT]
    /// Where the footer starts: column data must end before it.
    private let dataEnd: Int

    /// Opens `url` and reads its footer.
    public init(url: URL, limits: ParquetLimits = ParquetLimits()) throws {
        self.url = url
        self.limits = limits
        let path = url.path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw ParquetError(file: path, "cannot open: \(String(cString: strerror(errno)))")
        }
        var opened = true
        defer { if opened { close(fd) } }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw ParquetError(file: path, "cannot stat: \(String(cString: strerror(errno)))")
        }
        guard info.st_mode & S_IFMT == S_IFREG else { throw ParquetError(file: path, "not a regular file") }
        let size = Int(info.st_size)
        guard size >= 12 else {
            throw ParquetError(file: path, "not a parquet file: \(size) bytes is too short (truncated?)")
        }
        let head = try readFully(fd, path: path, offset: 0, count: 4)
        let tail = try readFully(fd, path: path, offset: size - 8, count: 8)
        guard head == Array("PAR1".utf8) else {
            throw ParquetError(file: path, "not a parquet file (no PAR1 magic at the start)")
        }
        if Array(tail[4...]) == Array("PARE".utf8) {
            throw ParquetError(file: path, "encrypted parquet files are not supported")
        }
        guard Array(tail[4...]) == Array("PAR1".utf8) else {
            throw ParquetError(file: path, "no PAR1 magic at the end: truncated or not a parquet file")
        }
        let footerLength = Int(tail[0]) | Int(tail[1]) << 8 | Int(tail[2]) << 16 | Int(tail[3]) << 24
        guard footerLength <= size - 12 else {
            throw ParquetError(
                file: path, "footer length \(footerLength) exceeds the file's \(size) bytes (truncated?)")
        }
        guard footerLength <= limits.maxFooterBytes else {
            throw ParquetError(
                file: path, "footer of \(footerLength) bytes is over the limit of \(limits.maxFooterBytes)")
        }
        let footerStart = size - 8 - footerLength
        let footer = try readFully(fd, path: path, offset: footerStart, count: footerLength)
        let metadata: FileMetaDataT
        let resolved: (leaves: [Leaf], columns: [ParquetColumnSchema], skipped: [String])
        do {
            metadata = try footer.withUnsafeBytes { bytes in
                var reader = CompactReader(ByteCursor(bytes))
                return try reader.fileMetaData()
            }
            resolved = try resolveSchema(metadata.schema)
        } catch let error as Malformed {
            throw ParquetError(file: path, "corrupt footer: \(error)")
        }
        let rows = metadata.numRows ?? 0
        guard rows >= 0 else { throw ParquetError(file: path, "corrupt footer: negative row count \(rows)") }
        var infos: [ParquetRowGroupInfo] = []
        var sum: Int64 = 0
        for (g, group) in metadata.rowGroups.enumerated() {
            let groupRows = group.numRows ?? 0
            let (total, overflow) = sum.addingReportingOverflow(groupRows)
            guard groupRows >= 0, !overflow else {
                throw ParquetError(file: path, "corrupt footer: row group \(g) has \(groupRows) rows")
            }
            guard group.columns.count == resolved.leaves.count else {
                throw ParquetError(
                    file: path,
                    "corrupt footer: row group \(g) has \(group.columns.count) column chunks but the schema has "
                        + "\(resolved.leaves.count) leaf columns")
            }
            sum = total
            infos.append(
                ParquetRowGroupInfo(
                    rows: Int(groupRows), totalByteSize: Int(clamping: group.totalByteSize ?? 0),
                    columns: zip(group.columns, resolved.leaves).map { chunk, leaf in
                        let m = chunk.metaData
                        return ParquetChunkInfo(
                            path: leaf.path.joined(separator: "."),
                            compression: m?.codec.map { ParquetCompression(code: $0)?.rawValue ?? "CODEC(\($0))" }
                                ?? "UNKNOWN",
                            encodings: m?.encodings.map(encodingName) ?? [],
                            values: Int(clamping: m?.numValues ?? 0),
                            compressedBytes: Int(clamping: m?.totalCompressedSize ?? 0),
                            uncompressedBytes: Int(clamping: m?.totalUncompressedSize ?? 0))
                    }))
        }
        guard sum == rows else {
            throw ParquetError(file: path, "corrupt footer: \(rows) rows, but the row groups hold \(sum)")
        }
        fileSize = size
        dataEnd = footerStart
        schema = resolved.columns
        skippedColumns = resolved.skipped
        leaves = resolved.leaves
        groups = metadata.rowGroups
        rowGroups = infos
        rowCount = Int(rows)
        createdBy = metadata.createdBy
        formatVersion = Int(metadata.version ?? 0)
        var keyValue: [String: String] = [:]
        for (k, v) in metadata.keyValue { keyValue[k] = v ?? "" }
        keyValueMetadata = keyValue
        descriptor = fd
        opened = false
    }

    deinit { close(descriptor) }

    /// The columns `names` (nil: every scalar column) in the order given; unknown and nested names are errors.
    public func columns(named names: [String]?) throws -> [ParquetColumnSchema] {
        guard let names else { return schema }
        var byName: [String: ParquetColumnSchema] = [:]
        for c in schema where byName[c.name] == nil { byName[c.name] = c }
        return try names.map { name in
            if let c = byName[name] { return c }
            if skippedColumns.contains(name) {
                throw ParquetError(
                    file: url.path, "column '\(name)' is nested (list, struct or map) and cannot be read")
            }
            throw ParquetError(
                file: url.path,
                "no column '\(name)'; the columns are \(schema.map(\.name).joined(separator: ", "))")
        }
    }

    /// Reads the row groups one after another, handing each one's row count and the columns `names` (nil:
    /// every scalar column) to `body`. Only one row group's values are in memory at a time.
    public func forEachRowGroup(
        columns names: [String]? = nil, _ body: (_ rows: Int, _ columns: [String: ParquetColumn]) throws -> Void
    ) throws {
        let selected = try columns(named: names)
        for g in rowGroups.indices {
            let read = try readRowGroup(g, columns: selected)
            var byName: [String: ParquetColumn] = [:]
            for c in read { byName[c.name] = c }
            try body(rowGroups[g].rows, byName)
        }
    }

    /// The columns `names` (nil: every scalar column) of row group `index`, in the order asked.
    public func readRowGroup(_ index: Int, columns names: [String]? = nil) throws -> [ParquetColumn] {
        try readRowGroup(index, columns: try columns(named: names))
    }

    /// The columns `selected` (from `schema`) of row group `index`.
    public func readRowGroup(_ index: Int, columns selected: [ParquetColumnSchema]) throws -> [ParquetColumn] {
        guard rowGroups.indices.contains(index) else {
            throw ParquetError(file: url.path, "no row group \(index) (the file has \(rowGroups.count))")
        }
        let rows = rowGroups[index].rows
        guard rows <= limits.maxRowsPerRowGroup else {
            throw ParquetError(
                file: url.path,
                "row group \(index) has \(rows) rows, over the limit of \(limits.maxRowsPerRowGroup) per row group")
        }
        return try selected.map { column in
            do {
                return ParquetColumn(schema: column, values: try readChunk(group: index, column: column, rows: rows))
            } catch let error as Malformed {
                throw ParquetError(file: url.path, "row group \(index), column '\(column.name)': \(error)")
            } catch let error as ParquetError {
                throw error
            } catch {
                throw ParquetError(file: url.path, "row group \(index), column '\(column.name)': \(error)")
            }
        }
    }

    /// Reads and decodes one column chunk.
    private func readChunk(group: Int, column: ParquetColumnSchema, rows: Int) throws -> ParquetValues {
        if rows == 0 { return try ChunkDecoder.empty(column) }
        let chunk = groups[group].columns[column.leafIndex]
        let leaf = leaves[column.leafIndex]
        guard !chunk.encrypted else { throw Malformed("the column is encrypted") }
        guard chunk.filePath == nil else {
            throw Malformed("the column's data is in another file (\(chunk.filePath ?? "")), which is not supported")
        }
        guard let meta = chunk.metaData else { throw Malformed("the column chunk has no metadata") }
        guard meta.type == leaf.element.type else {
            throw Malformed("the chunk's type \(meta.type ?? -1) differs from the schema's \(leaf.element.type ?? -1)")
        }
        if !meta.path.isEmpty && meta.path != leaf.path {
            throw Malformed("the chunk's path \(meta.path.joined(separator: ".")) differs from the schema's")
        }
        guard let codecCode = meta.codec, let codec = ParquetCompression(code: codecCode) else {
            throw Malformed("unknown compression codec \(meta.codec ?? -1)")
        }
        guard codec.isSupported else { throw Malformed("compression \(codec.rawValue) is not supported") }
        guard meta.numValues == Int64(rows) else {
            throw Malformed("the chunk holds \(meta.numValues ?? 0) values but the row group has \(rows) rows")
        }
        let dataOffset = meta.dataPageOffset ?? 0
        var start = dataOffset
        if let dictionary = meta.dictionaryPageOffset, dictionary >= 4, dictionary < dataOffset { start = dictionary }
        let length = meta.totalCompressedSize ?? 0
        guard start >= 4, length > 0, start <= Int64(dataEnd), length <= Int64(dataEnd) - start else {
            throw Malformed(
                "the chunk's bytes \(start)..<\(start &+ length) lie outside the file's data (4..<\(dataEnd))")
        }
        guard length <= Int64(limits.maxChunkBytes) else {
            throw Malformed("the chunk's \(length) bytes are over the limit of \(limits.maxChunkBytes)")
        }
        let bytes = try readFully(descriptor, path: url.path, offset: Int(start), count: Int(length))
        let decoder = ChunkDecoder(
            column: column, typeLength: Int(leaf.element.typeLength ?? 0), codec: codec, rows: rows,
            maxDefinitionLevel: leaf.maxDefinitionLevel, maxPageBytes: limits.maxPageBytes)
        return try bytes.withUnsafeBytes { try decoder.decode($0) }
    }
}

/// Reads exactly `count` bytes at `offset`, or fails naming the file.
private func readFully(_ fd: Int32, path: String, offset: Int, count: Int) throws -> [UInt8] {
    var out = [UInt8](repeating: 0, count: count)
    var done = 0
    try out.withUnsafeMutableBytes { buffer in
        while done < count {
            guard let base = buffer.baseAddress else { return }
            let n = pread(fd, base + done, count - done, off_t(offset + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw ParquetError(
                    file: path, "read error at byte \(offset + done): \(String(cString: strerror(errno)))")
            }
            if n == 0 {
                throw ParquetError(
                    file: path, "file ends at byte \(offset + done), expected \(count - done) more (truncated?)")
            }
            done += n
        }
    }
    return out
}
