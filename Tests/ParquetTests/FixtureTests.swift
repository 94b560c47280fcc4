import Checkpoints
import Foundation
import Parquet
import TestSupport
import Testing

/// The pyarrow-written files of `Tests/Fixtures/parquet/` (tools/fixtures/make_parquet.py) read back exactly
/// as pyarrow reads them.
struct FixtureTests {
    static let typeFixtures = [
        "types_none_dict_v1", "types_none_plain_v2", "types_snappy_plain_v1", "types_snappy_dict_v2",
        "types_zstd_dict_v1", "types_zstd_plain_v2", "types_gzip_plain_v1", "types_gzip_dict_v2",
    ]
    static let allFixtures = typeFixtures + ["dict_fallback", "empty", "legacy_int96", "clip_metadata"]

    @Test(arguments: allFixtures)
    func valuesMatchPyarrow(_ name: String) throws {
        let expected = try Expected(name)
        let file = try ParquetFile(url: Fixtures.url("parquet/\(name).parquet"))
        #expect(file.rowCount == expected.rows)
        #expect(file.rowGroups.map(\.rows) == expected.rowGroups)
        #expect(file.skippedColumns == expected.skipped)
        #expect(file.schema.map(\.name) == expected.schema.map(\.name))
        #expect(file.schema.map(\.physicalType.rawValue) == expected.schema.map(\.physical))
        #expect(file.schema.map(\.nullable) == expected.schema.map(\.nullable))
        var read: [String: [String?]] = [:]
        var kinds: [String: String] = [:]
        var groups = 0
        try file.forEachRowGroup { rows, columns in
            #expect(rows == file.rowGroups[groups].rows)
            #expect(Set(columns.keys) == Set(file.schema.map(\.name)))
            for (columnName, column) in columns {
                #expect(column.count == rows, "\(columnName)")
                read[columnName, default: []] += canonical(column.values)
                kinds[columnName] = kind(column.values)
            }
            groups += 1
        }
        #expect(groups == file.rowGroups.count)
        for column in expected.schema {
            let want = try #require(expected.columns[column.name], "\(column.name)")
            #expect(kinds[column.name] == want.kind, "\(name).\(column.name)")
            let got = read[column.name] ?? []
            #expect(got.count == want.values.count, "\(name).\(column.name)")
            let firstDifference = zip(got, want.values).enumerated().first { $0.element.0 != $0.element.1 }
            let location = "\(name).\(column.name) row \(firstDifference?.offset ?? -1)"
            let what =
                "\(String(describing: firstDifference?.element.0)) vs \(String(describing: firstDifference?.element.1))"
            #expect(firstDifference == nil, "\(location): \(what)")
        }
    }

    @Test func schemaDescribesLogicalTypes() throws {
        let file = try ParquetFile(url: Fixtures.url("parquet/types_snappy_dict_v2.parquet"))
        let byName = Dictionary(uniqueKeysWithValues: file.schema.map { ($0.name, $0) })
        #expect(byName["s"]?.logicalType == "STRING" && byName["s"]?.valueKind == .string)
        #expect(byName["bin"]?.logicalType == nil && byName["bin"]?.valueKind == .bytes)
        #expect(byName["i8"]?.logicalType == "INT(8, signed)" && byName["i8"]?.valueKind == .int32)
        #expect(byName["u32"]?.logicalType == "INT(32, unsigned)" && byName["u32"]?.valueKind == .int64)
        #expect(byName["u64"]?.valueKind == .uint64)
        #expect(byName["date"]?.logicalType == "DATE")
        #expect(byName["ts_us"]?.logicalType == "TIMESTAMP(MICROS, UTC)")
        #expect(byName["ts_ms"]?.logicalType == "TIMESTAMP(MILLIS)")
        #expect(byName["time_us"]?.logicalType == "TIME(MICROS)")
        #expect(byName["fixed"]?.typeLength == 4 && byName["fixed"]?.physicalType == .fixedLenByteArray)
        #expect(byName["req"]?.nullable == false && byName["b"]?.nullable == true)
        #expect(file.skippedColumns == ["tags", "info"])
        #expect(file.rowGroups.allSatisfy { $0.columns.allSatisfy { $0.compression == "SNAPPY" } })
        #expect(file.rowGroups[0].columns.map(\.path).contains("tags.list.element"))
        #expect(file.createdBy?.hasPrefix("parquet-cpp-arrow") == true)
        let legacy = try ParquetFile(url: Fixtures.url("parquet/legacy_int96.parquet"))
        #expect(legacy.schema.map(\.physicalType) == [.int96, .int32, .int64, .byteArray])
        #expect(legacy.schema[3].logicalType == "STRING")
    }

    @Test func readsOnlyTheColumnsAskedFor() throws {
        let file = try ParquetFile(url: Fixtures.url("parquet/types_zstd_dict_v1.parquet"))
        let expected = try Expected("types_zstd_dict_v1")
        var seen: [String: [String?]] = [:]
        try file.forEachRowGroup(columns: ["s", "i64"]) { _, columns in
            #expect(Set(columns.keys) == ["s", "i64"])
            for (name, c) in columns { seen[name, default: []] += canonical(c.values) }
        }
        #expect(seen["s"] == expected.columns["s"]?.values)
        #expect(seen["i64"] == expected.columns["i64"]?.values)
        let ordered = try file.readRowGroup(1, columns: ["req", "cat"])
        #expect(ordered.map(\.name) == ["req", "cat"])
        #expect(ordered[0].count == 40)

        let path = Fixtures.url("parquet/types_zstd_dict_v1.parquet").path
        let unknown = #expect(throws: ParquetError.self) { try file.forEachRowGroup(columns: ["nope"]) { _, _ in } }
        #expect(unknown?.description.contains(path) == true && unknown?.description.contains("'nope'") == true)
        let nested = #expect(throws: ParquetError.self) { try file.forEachRowGroup(columns: ["tags"]) { _, _ in } }
        #expect(nested?.description.contains("nested") == true)
        #expect(throws: ParquetError.self) { try file.readRowGroup(3) }
    }

    @Test func streamsOneRowGroupAtATime() throws {
        let file = try ParquetFile(url: Fixtures.url("parquet/types_gzip_plain_v1.parquet"))
        var sizes: [Int] = []
        try file.forEachRowGroup(columns: ["req_s"]) { rows, columns in
            sizes.append(rows)
            let values = columns["req_s"]?.values
            guard case .string(let strings)? = values else {
                Issue.record("req_s is not strings")
                return
            }
            let first = sizes.dropLast().reduce(0, +)
            #expect(strings == (first..<(first + rows)).map { "row \($0)" })
        }
        #expect(sizes == [40, 40, 20])
        // An error thrown by the body stops the walk and comes out unchanged.
        struct Stop: Error {}
        var calls = 0
        #expect(throws: Stop.self) {
            try file.forEachRowGroup(columns: ["req"]) { _, _ in
                calls += 1
                throw Stop()
            }
        }
        #expect(calls == 1)
    }

    @Test func rowsBecomeJSONObjects() throws {
        let file = try ParquetFile(url: Fixtures.url("parquet/clip_metadata.parquet"))
        let columns = try file.readRowGroup(0)
        let row = parquetRowObject(columns, row: 3)
        let object = try #require(row.objectValue)
        #expect(object["caption"] == .string("🐱 emoji cat 🎉 (3)"))
        #expect(object["url"] == .string("https://example.com/images/000003.jpg"))
        #expect(object["width"] == .int(203))
        #expect(object["LICENSE"] == .string("?") && parquetRowObject(columns, row: 4).objectValue?["LICENSE"] == .null)
        #expect(object["exif"] == .null)
        // A float32 becomes the double of its shortest decimal form (0.2653846, not 0.26538461446762085).
        let bits = try #require(Expected("clip_metadata").columns["similarity"]?.values[3] ?? nil)
        let stored = Float(bitPattern: try #require(UInt32(bits, radix: 16)))
        #expect(object["similarity"] == .double(try #require(Double(stored.description))))
        // The fast text writer gives the same objects, keys in column order.
        let writer = ParquetJSONRowWriter(columns: columns)
        for r in 0..<file.rowCount {
            var text: [UInt8] = []
            writer.write(row: r, into: &text)
            let parsed = try JSONDecoder().decode(JSONValue.self, from: Data(text))
            #expect(sameJSON(parsed, parquetRowObject(columns, row: r)), "row \(r)")
        }
        var first: [UInt8] = []
        writer.write(row: 0, into: &first)
        #expect(String(decoding: first, as: UTF8.self).hasPrefix(#"{"image_path":"/data/images/000000000.jpg","#))
    }

    @Test func everyTypeBecomesJSON() throws {
        let file = try ParquetFile(url: Fixtures.url("parquet/types_none_plain_v2.parquet"))
        let columns = try file.readRowGroup(0)
        let writer = ParquetJSONRowWriter(columns: columns)
        for r in 0..<40 {
            var text: [UInt8] = []
            writer.write(row: r, into: &text)
            let parsed = try JSONDecoder().decode(JSONValue.self, from: Data(text))
            #expect(
                sameJSON(parsed, parquetRowObject(columns, row: r)),
                "row \(r): \(String(decoding: text, as: UTF8.self))")
        }
        let row0 = try #require(parquetRowObject(columns, row: 0).objectValue)
        #expect(row0["f32"] == .null && row0["f64"] == .null)  // NaN
        #expect(row0["bin"] == .string(Data([0xFF, 0xFE, 0x00] + Array("invalid utf-8".utf8)).base64EncodedString()))
    }
}

/// What pyarrow read back from a fixture (`NAME.json`).
struct Expected {
    struct Column {
        let name: String
        let physical: String
        let nullable: Bool
    }
    let rows: Int
    let rowGroups: [Int]
    let skipped: [String]
    let schema: [Column]
    let columns: [String: (kind: String, values: [String?])]

    init(_ name: String) throws {
        let data = try Data(contentsOf: Fixtures.url("parquet/\(name).json"))
        let root = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        rows = try #require(root["rows"] as? Int)
        rowGroups = try #require(root["row_groups"] as? [Int])
        skipped = try #require(root["skipped"] as? [String])
        schema = try #require(root["schema"] as? [[String: Any]]).map {
            Column(
                name: $0["name"] as? String ?? "", physical: $0["physical"] as? String ?? "",
                nullable: $0["nullable"] as? Bool ?? false)
        }
        var columns: [String: (String, [String?])] = [:]
        for (key, value) in try #require(root["columns"] as? [String: Any]) {
            let entry = try #require(value as? [String: Any])
            let kind = try #require(entry["kind"] as? String)
            let values = try #require(entry["values"] as? [Any])
            columns[key] = (
                kind,
                values.map { v -> String? in
                    if v is NSNull { return nil }
                    if kind == "bool" { return (v as? Bool) == true ? "true" : "false" }
                    let s = v as? String ?? "?"
                    return kind == "string" ? hex(Array(s.utf8)) : s
                }
            )
        }
        self.columns = columns
    }
}

/// Equal JSON, numbers compared by value (JSON text does not say whether -0.0 or 1.0 is an integer).
func sameJSON(_ a: JSONValue, _ b: JSONValue) -> Bool {
    switch (a, b) {
    case (.int(let x), .double(let y)), (.double(let y), .int(let x)): return Double(x) == y
    case (.object(let x), .object(let y)):
        return Set(x.keys) == Set(y.keys) && x.allSatisfy { key, value in y[key].map { sameJSON(value, $0) } ?? false }
    case (.array(let x), .array(let y)): return x.count == y.count && zip(x, y).allSatisfy { sameJSON($0, $1) }
    default: return a == b
    }
}

func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

/// Values in the fixture's text form: integers in decimal, floats as the hex of their bits, strings as the hex
/// of their UTF-8 bytes (exact, not up to Unicode equivalence), bytes as hex.
func canonical(_ values: ParquetValues) -> [String?] {
    switch values {
    case .boolean(let v): return v.map { $0.map { $0 ? "true" : "false" } }
    case .int32(let v): return v.map { $0.map { String($0) } }
    case .int64(let v): return v.map { $0.map { String($0) } }
    case .uint64(let v): return v.map { $0.map { String($0) } }
    case .float(let v): return v.map { $0.map { String(format: "%08x", $0.bitPattern) } }
    case .double(let v): return v.map { $0.map { String(format: "%016llx", $0.bitPattern) } }
    case .string(let v): return v.map { $0.map { hex(Array($0.utf8)) } }
    case .bytes(let v): return v.map { $0.map(hex) }
    }
}

func kind(_ values: ParquetValues) -> String {
    switch values {
    case .boolean: "bool"
    case .int32, .int64, .uint64: "int"
    case .float: "float"
    case .double: "double"
    case .string: "string"
    case .bytes: "bytes"
    }
}
