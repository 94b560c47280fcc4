import Foundation

/// A small Parquet writer: flat columns of booleans, 32/64-bit integers, floats, doubles, strings and bytes,
/// one PLAIN-encoded data page (v1) per column chunk, definition levels for nullable columns, uncompressed
/// or snappy. It writes what `varaudit bench --component parquet` reads, and test files; pyarrow reads its
/// files.
public final class ParquetWriter {
    /// A column to write: name, the kind of its values and whether it may hold nulls.
    public struct Column: Sendable {
        public let name: String
        public let kind: ParquetValueKind
        public let nullable: Bool

        public init(_ name: String, _ kind: ParquetValueKind, nullable: Bool = true) {
            self.name = name
            self.kind = kind
            self.nullable = nullable
        }
    }

    private let url: URL
    private let handle: FileHandle
    private let columns: [Column]
    private let compression: ParquetCompression
    private var offset = 0
    private var rowGroups: [(rows: Int, chunks: [ChunkRecord])] = []
    private var closed = false
    /// Tests: a page size to declare instead of the real decompressed size.
    var declaredPageSize: Int32?

    private struct ChunkRecord {
        let offset: Int
        let compressedBytes: Int
        let uncompressedBytes: Int
        let values: Int
    }

    /// Creates (or replaces) `url`. `compression` is `.uncompressed` or `.snappy`.
    public init(url: URL, columns: [Column], compression: ParquetCompression = .snappy) throws {
        guard compression == .uncompressed || compression == .snappy else {
            throw ParquetError(file: url.path, "the writer compresses with snappy or not at all")
        }
        for c in columns where c.kind == .uint64 {
            throw ParquetError(file: url.path, "the writer has no unsigned columns (\(c.name))")
        }
        self.url = url
        self.columns = columns
        self.compression = compression
        guard FileManager.default.createFile(atPath: url.path, contents: nil),
            let handle = FileHandle(forWritingAtPath: url.path)
        else { throw ParquetError(file: url.path, "cannot create the file") }
        self.handle = handle
        try append(Array("PAR1".utf8))
    }

    deinit { if !closed { try? handle.close() } }

    private func append(_ bytes: [UInt8]) throws {
        do {
            try handle.write(contentsOf: bytes)
        } catch {
            throw ParquetError(file: url.path, "write failed: \(error.localizedDescription)")
        }
        offset += bytes.count
    }

    /// Writes one row group: one value array per column, in column order, all of the same length.
    public func write(rowGroup values: [ParquetValues]) throws {
        guard values.count == columns.count else {
            throw ParquetError(file: url.path, "\(values.count) value arrays for \(columns.count) columns")
        }
        let rows = values.first?.count ?? 0
        var chunks: [ChunkRecord] = []
        for (column, v) in zip(columns, values) {
            guard v.count == rows else {
                throw ParquetError(file: url.path, "column \(column.name) has \(v.count) values, not \(rows)")
            }
            var page: [UInt8] = []
            if column.nullable {
                let levels = (0..<rows).map { v.isNull($0) ? UInt8(0) : UInt8(1) }
                var encoded: [UInt8] = []
                encodeBitPackedLevels(levels, into: &encoded)
                withUnsafeBytes(of: UInt32(encoded.count).littleEndian) { page += $0 }
                page += encoded
            } else if (0..<rows).contains(where: { v.isNull($0) }) {
                throw ParquetError(file: url.path, "column \(column.name) is not nullable but holds nulls")
            }
            try encodePlain(v, kind: column.kind, name: column.name, into: &page)
            let body = compression == .snappy ? snappyCompress(page) : page
            var header = CompactWriter()
            header.structBody { h in
                h.field(1, i32: 0)
                h.field(2, i32: declaredPageSize ?? Int32(page.count))
                h.field(3, i32: Int32(body.count))
                h.field(5) { d in
                    d.field(1, i32: Int32(rows))
                    d.field(2, i32: 0)
                    d.field(3, i32: 3)
                    d.field(4, i32: 3)
                }
            }
            let start = offset
            try append(header.bytes)
            try append(body)
            chunks.append(
                ChunkRecord(
                    offset: start, compressedBytes: header.bytes.count + body.count,
                    uncompressedBytes: header.bytes.count + page.count, values: rows))
        }
        rowGroups.append((rows, chunks))
    }

    /// Writes the footer and closes the file.
    public func close() throws {
        guard !closed else { return }
        closed = true
        var footer = CompactWriter()
        footer.structBody { m in
            m.field(1, i32: 1)
            m.field(2, structList: columns.count + 1) { e, i in
                if i == 0 {
                    e.field(4, string: "schema")
                    e.field(5, i32: Int32(columns.count))
                    return
                }
                let c = columns[i - 1]
                e.field(1, i32: physicalCode(c.kind))
                e.field(3, i32: c.nullable ? 1 : 0)
                e.field(4, string: c.name)
                if c.kind == .string {
                    e.field(6, i32: 0)
                    e.field(10) { l in l.field(1) { _ in } }
                }
            }
            m.field(3, i64: Int64(rowGroups.reduce(0) { $0 + $1.rows }))
            m.field(4, structList: rowGroups.count) { g, i in
                let group = rowGroups[i]
                g.field(1, structList: group.chunks.count) { c, k in
                    let chunk = group.chunks[k]
                    c.field(2, i64: Int64(chunk.offset))
                    c.field(3) { meta in
                        meta.field(1, i32: physicalCode(columns[k].kind))
                        meta.field(2, i32List: [0, 3])
                        meta.field(3, stringList: [columns[k].name])
                        meta.field(4, i32: compression.code)
                        meta.field(5, i64: Int64(chunk.values))
                        meta.field(6, i64: Int64(chunk.uncompressedBytes))
                        meta.field(7, i64: Int64(chunk.compressedBytes))
                        meta.field(9, i64: Int64(chunk.offset))
                    }
                }
                g.field(2, i64: Int64(group.chunks.reduce(0) { $0 + $1.uncompressedBytes }))
                g.field(3, i64: Int64(group.rows))
            }
            m.field(6, string: "varaudit parquet writer")
        }
        try append(footer.bytes)
        var tail: [UInt8] = []
        withUnsafeBytes(of: UInt32(footer.bytes.count).littleEndian) { tail += $0 }
        tail += Array("PAR1".utf8)
        try append(tail)
        do {
            try handle.close()
        } catch {
            throw ParquetError(file: url.path, "close failed: \(error.localizedDescription)")
        }
    }

    private func physicalCode(_ kind: ParquetValueKind) -> Int32 {
        switch kind {
        case .boolean: 0
        case .int32: 1
        case .int64, .uint64: 2
        case .float: 4
        case .double: 5
        case .string, .bytes: 6
        }
    }

    /// The non-null values of `values`, PLAIN-encoded.
    private func encodePlain(_ values: ParquetValues, kind: ParquetValueKind, name: String, into out: inout [UInt8])
        throws
    {
        func fixed<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        func bytes(_ b: some Collection<UInt8>) {
            fixed(UInt32(b.count))
            out += b
        }
        switch (values, kind) {
        case (.boolean(let v), .boolean):
            let present = v.compactMap { $0 }
            var packed = [UInt8](repeating: 0, count: (present.count + 7) / 8)
            for (i, b) in present.enumerated() where b { packed[i >> 3] |= 1 << UInt8(i & 7) }
            out += packed
        case (.int32(let v), .int32): for x in v { if let x { fixed(x) } }
        case (.int64(let v), .int64): for x in v { if let x { fixed(x) } }
        case (.float(let v), .float): for x in v { if let x { fixed(x.bitPattern) } }
        case (.double(let v), .double): for x in v { if let x { fixed(x.bitPattern) } }
        case (.string(let v), .string): for x in v { if let x { bytes(x.utf8) } }
        case (.bytes(let v), .bytes): for x in v { if let x { bytes(x) } }
        default: throw ParquetError(file: url.path, "column \(name): values do not match its kind \(kind)")
        }
    }
}

/// Levels 0/1 as bit-packed runs of the RLE / bit-packing hybrid (bit width 1).
private func encodeBitPackedLevels(_ levels: [UInt8], into out: inout [UInt8]) {
    let groups = (levels.count + 7) / 8
    guard groups > 0 else { return }
    var header = UInt64(groups) << 1 | 1
    while header >= 0x80 {
        out.append(UInt8(header & 0x7F) | 0x80)
        header >>= 7
    }
    out.append(UInt8(header))
    var packed = [UInt8](repeating: 0, count: groups)
    for (i, level) in levels.enumerated() where level == 1 { packed[i >> 3] |= 1 << UInt8(i & 7) }
    out += packed
}
