import ArgumentParser
import Checkpoints
import Foundation
import Parquet

extension VarAudit {
    /// `varaudit inspect`: lists the tensors of a checkpoint file (safetensors or PyTorch `.bin`), or the
    /// schema and row groups of a parquet file.
    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the tensors (name, shape) of a .safetensors or PyTorch .bin checkpoint, or a parquet file.",
            discussion: """
                PyTorch .bin files are read with a restricted unpickler that only rebuilds tensors: a file \
                that asks for any other Python global is refused, and nothing in it is executed. For a \
                .parquet file (e.g. clip-retrieval metadata): the columns (physical and logical type, \
                nullable), nested columns that index build skips, row count, row groups and compression.
                """
        )

        @Argument(help: "Checkpoint files (.safetensors, .bin, .pt) or parquet files (.parquet).")
        var files: [String]

        @Flag(help: "Print JSON: [{\"file\", \"tensors\": [{\"name\", \"shape\"}], \"parameters\"}].")
        var json = false

        func run() throws {
            var reports: [[String: Any]] = []
            for file in files {
                if file.lowercased().hasSuffix(".parquet") {
                    let report = try parquetReport(file)
                    if json { reports.append(report) } else { printParquetReport(report) }
                    continue
                }
                let archive = try loadTensorArchive(url: URL(fileURLWithPath: file))
                var tensors: [[String: Any]] = []
                var parameters = 0
                for key in archive.keys {
                    let shape = try archive.shape(of: key)
                    parameters += shape.reduce(1, *)
                    tensors.append(["name": key, "shape": shape])
                }
                if json {
                    reports.append(["file": file, "tensors": tensors, "parameters": parameters])
                } else {
                    print("\(file): \(archive.keys.count) tensors, \(parameters) parameters")
                    for t in tensors {
                        print("  \(t["name"] as? String ?? "")  \(t["shape"] as? [Int] ?? [])")
                    }
                }
            }
            if json { try printJSON(reports) }
        }
    }
}

/// Prints a JSON value (pretty, sorted keys) on stdout.
func printJSON(_ value: Any) throws {
    let data = try JSONSerialization.data(withJSONObject: value, options: [.prettyPrinted, .sortedKeys])
    print(String(decoding: data, as: UTF8.self))
}

/// A parquet file's schema, row groups and compression, with snake_case keys.
private func parquetReport(_ path: String) throws -> [String: Any] {
    let file = try ParquetFile(url: URL(fileURLWithPath: path))
    let codecs = file.rowGroups.flatMap { $0.columns.map(\.compression) }
    return [
        "file": path, "format": "parquet", "rows": file.rowCount, "bytes": file.fileSize,
        "created_by": file.createdBy ?? "", "format_version": file.formatVersion,
        "compression": Array(Set(codecs)).sorted(),
        "columns": file.schema.map { c -> [String: Any] in
            var entry: [String: Any] = [
                "name": c.name, "physical_type": c.physicalType.rawValue, "nullable": c.nullable,
                "logical_type": c.logicalType ?? NSNull(),
            ]
            if let length = c.typeLength { entry["type_length"] = length }
            return entry
        },
        "skipped_columns": file.skippedColumns,
        "row_groups": file.rowGroups.map { g -> [String: Any] in
            [
                "rows": g.rows, "total_byte_size": g.totalByteSize, "compressed_bytes": g.compressedBytes,
                "columns": g.columns.map { c -> [String: Any] in
                    [
                        "path": c.path, "compression": c.compression, "encodings": c.encodings, "values": c.values,
                        "compressed_bytes": c.compressedBytes, "uncompressed_bytes": c.uncompressedBytes,
                    ]
                },
            ]
        },
    ]
}

private func printParquetReport(_ report: [String: Any]) {
    let columns = report["columns"] as? [[String: Any]] ?? []
    let groups = report["row_groups"] as? [[String: Any]] ?? []
    let codecs = (report["compression"] as? [String] ?? []).joined(separator: ", ")
    print(
        "\(report["file"] ?? ""): parquet, \(report["rows"] ?? 0) rows in \(groups.count) row group(s), "
            + "\(columns.count) columns, compression \(codecs.isEmpty ? "none" : codecs); "
            + "written by \(report["created_by"] ?? "")")
    let width = columns.map { ($0["name"] as? String ?? "").count }.max() ?? 0
    for c in columns {
        let name = c["name"] as? String ?? ""
        var line = "  " + name.padding(toLength: max(width, 4), withPad: " ", startingAt: 0)
        line += "  \(c["physical_type"] ?? "")"
        if let length = c["type_length"] as? Int { line += "(\(length))" }
        if let logical = c["logical_type"] as? String { line += " (\(logical))" }
        if c["nullable"] as? Bool == true { line += ", nullable" }
        print(line)
    }
    if let skipped = report["skipped_columns"] as? [String], !skipped.isEmpty {
        print("  nested columns (not read): \(skipped.joined(separator: ", "))")
    }
    for (i, g) in groups.enumerated() {
        print(
            "  row group \(i): \(g["rows"] ?? 0) rows, \(g["compressed_bytes"] ?? 0) bytes in the file, "
                + "\(g["total_byte_size"] ?? 0) uncompressed")
    }
}
