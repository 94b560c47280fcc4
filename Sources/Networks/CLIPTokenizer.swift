import Checkpoints
import Foundation

/// transformers' `CLIPTokenizer` (transformers 5, backed by the `tokenizers` library; the same pipeline as
/// `CLIPTokenizerFast` in transformers 4): byte-level BPE with CLIP's `</w>` end-of-word marker.
///
/// `encode` does what `tokenizer(text, padding="max_length", truncation=True, max_length=maxLength)` does:
/// 1. added tokens (the special tokens, and any others the files list) are cut out of the raw text, leftmost and
///    longest first; those marked `normalized` are looked for again after normalization;
/// 2. every other piece is normalized: NFC, each run of white space (Unicode `White_Space`) to one space, then
///    lower case (each character's full lower-case mapping, without context: Σ always becomes σ);
/// 3. pre-tokenized with CLIP's pattern
///    `<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+` (white space
///    dropped), each match split again by GPT-2's byte-level pattern, and mapped byte by byte through the
///    bytes-to-unicode table;
/// 4. each word is merged by BPE (lowest merge rank first, `</w>` on its last symbol); symbols not in the
///    vocabulary become the unknown token;
/// 5. the ids are cut to `maxLength − 2`, framed by the start and end tokens and padded with the pad token.
///
/// transformers 4's slow Python `CLIPTokenizer` agrees on ordinary text; it differs on CJK ideographs (which it
/// splits one by one), control characters (which it drops) and final sigma.
public struct CLIPTokenizer: Sendable {
    /// A token cut out of the text before normalization (`normalized` false) or after it (true).
    public struct AddedToken: Sendable, Equatable {
        public var content: String
        public var id: Int
        public var normalized: Bool
        public var lstrip: Bool
        public var rstrip: Bool

        public init(content: String, id: Int, normalized: Bool = false, lstrip: Bool = false, rstrip: Bool = false) {
            self.content = content
            self.id = id
            self.normalized = normalized
            self.lstrip = lstrip
            self.rstrip = rstrip
        }
    }

    struct Pair: Hashable {
        let first: String
        let second: String
    }

    /// Token → id (`vocab.json`, or `model.vocab` of `tokenizer.json`).
    public let vocabulary: [String: Int]
    let ranks: [Pair: Int]
    let suffix: String
    /// Start, end, padding and unknown tokens with their ids.
    public let bosToken: String, eosToken: String, padToken: String, unkToken: String
    public let bosTokenId: Int, eosTokenId: Int, padTokenId: Int, unkTokenId: Int
    /// Tokens cut out of the text before BPE.
    public let addedTokens: [AddedToken]
    /// The length every encoding is cut or padded to (the text config's `max_position_embeddings`).
    public var maxLength: Int
    /// The file the merges were read from (`tokenizer.json` or `merges.txt`), for messages.
    public let source: String

    /// A tokenizer over `vocabulary` and `merges` (in rank order). Special tokens must be in the vocabulary or
    /// among `addedTokens`; every merge's parts and result must be in the vocabulary.
    public init(
        vocabulary: [String: Int], merges: [(String, String)], bosToken: String = "<|startoftext|>",
        eosToken: String = "<|endoftext|>", padToken: String = "<|endoftext|>", unkToken: String = "<|endoftext|>",
        addedTokens: [AddedToken] = [], maxLength: Int = 77, endOfWordSuffix: String = "</w>",
        source: String = "<memory>"
    ) throws {
        self.vocabulary = vocabulary
        var ranks: [Pair: Int] = [:]
        for (rank, (a, b)) in merges.enumerated() {
            for part in [a, b, a + b] where vocabulary[part] == nil {
                throw CheckpointError(
                    file: source, key: "merges",
                    "merge \(rank + 1) (\"\(a) \(b)\") uses \"\(part)\", which is not in the vocabulary")
            }
            let pair = Pair(first: a, second: b)
            if ranks[pair] == nil { ranks[pair] = rank }
        }
        self.ranks = ranks
        suffix = endOfWordSuffix
        self.source = source
        self.maxLength = maxLength
        var added = addedTokens
        func id(of token: String, key: String) throws -> Int {
            if let t = added.first(where: { $0.content == token }) { return t.id }
            if let v = vocabulary[token] { return v }
            throw CheckpointError(file: source, key: key, "token \"\(token)\" is not in the vocabulary")
        }
        bosTokenId = try id(of: bosToken, key: "bos_token")
        eosTokenId = try id(of: eosToken, key: "eos_token")
        padTokenId = try id(of: padToken, key: "pad_token")
        unkTokenId = try id(of: unkToken, key: "unk_token")
        (self.bosToken, self.eosToken, self.padToken, self.unkToken) = (bosToken, eosToken, padToken, unkToken)
        for (token, tokenId) in [
            (bosToken, bosTokenId), (eosToken, eosTokenId), (unkToken, unkTokenId),
            (padToken, padTokenId),
        ]
        where !added.contains(where: { $0.content == token }) {
            added.append(AddedToken(content: token, id: tokenId))
        }
        self.addedTokens = added.filter { !$0.content.isEmpty }
    }

    // MARK: Encoding

    /// The token ids of `text` framed by the start and end tokens, cut to `maxLength` and padded to it.
    public func encode(_ text: String) -> [Int] {
        var ids = [bosTokenId] + tokenIds(text).prefix(max(maxLength - 2, 0)) + [eosTokenId]
        if ids.count < maxLength { ids += [Int](repeating: padTokenId, count: maxLength - ids.count) }
        return ids
    }

    /// The ids of `text` without start, end or padding tokens, and without truncation.
    public func tokenIds(_ text: String) -> [Int] {
        var ids: [Int] = []
        for piece in split(Array(text.unicodeScalars), normalized: false) {
            switch piece {
            case .added(let id): ids.append(id)
            case .text(let raw):
                for inner in split(normalize(raw), normalized: true) {
                    switch inner {
                    case .added(let id): ids.append(id)
                    case .text(let normalized):
                        for word in preTokenize(normalized) { ids += bpe(word).map { vocabulary[$0] ?? unkTokenId } }
                    }
                }
            }
        }
        return ids
    }

    /// The BPE tokens (vocabulary strings) of `text`, without special tokens around it.
    public func tokens(_ text: String) -> [String] {
        let byId = Dictionary(vocabulary.map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        let added = Dictionary(addedTokens.map { ($0.id, $0.content) }, uniquingKeysWith: { a, _ in a })
        return tokenIds(text).map { added[$0] ?? byId[$0] ?? unkToken }
    }

    enum Piece {
        case added(Int)
        case text([Unicode.Scalar])
    }

    /// Cuts the added tokens whose `normalized` flag is `normalized` out of `s`: at each position the longest
    /// one that starts there, scanning left to right; `lstrip`/`rstrip` tokens take the white space beside them.
    func split(_ s: [Unicode.Scalar], normalized: Bool) -> [Piece] {
        let candidates = addedTokens.filter { $0.normalized == normalized }.map {
            (token: $0, scalars: Array($0.content.unicodeScalars))
        }
        guard !candidates.isEmpty else { return s.isEmpty ? [] : [.text(s)] }
        var out: [Piece] = []
        var start = 0
        var i = 0
        while i < s.count {
            var best: (token: AddedToken, length: Int)? = nil
            for c in candidates where c.scalars.count > (best?.length ?? 0) && i + c.scalars.count <= s.count {
                if s[i..<(i + c.scalars.count)].elementsEqual(c.scalars) { best = (c.token, c.scalars.count) }
            }
            guard let best else {
                i += 1
                continue
            }
            var left = i
            var right = i + best.length
            if best.token.lstrip { while left > start && s[left - 1].properties.isWhitespace { left -= 1 } }
            if best.token.rstrip { while right < s.count && s[right].properties.isWhitespace { right += 1 } }
            if left > start { out.append(.text(Array(s[start..<left]))) }
            out.append(.added(best.token.id))
            start = right
            i = right
        }
        if start < s.count { out.append(.text(Array(s[start...]))) }
        return out
    }

    /// NFC, white-space runs to one space, lower case.
    func normalize(_ s: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: s)
        let composed = String(view).precomposedStringWithCanonicalMapping.unicodeScalars
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(s.count)
        var inSpace = false
        for c in composed {
            if c.properties.isWhitespace {
                if !inSpace { out.append(" ") }
                inSpace = true
                continue
            }
            inSpace = false
            let lower = c.properties.lowercaseMapping.unicodeScalars
            if lower.count == 1, lower.first == c { out.append(c) } else { out.append(contentsOf: lower) }
        }
        return out
    }

    /// CLIP's pre-tokenizer pattern, then GPT-2's byte-level split of each match, as byte-level strings.
    func preTokenize(_ s: [Unicode.Scalar]) -> [String] {
        var words: [String] = []
        for match in clipPieces(s) {
            for piece in byteLevelPieces(match) {
                var word = ""
                for byte in String(String.UnicodeScalarView(piece)).utf8 {
                    word.unicodeScalars.append(byteToUnicode[Int(byte)])
                }
                words.append(word)
            }
        }
        return words
    }

    /// The matches of `<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`.
    func clipPieces(_ s: [Unicode.Scalar]) -> [ArraySlice<Unicode.Scalar>] {
        var out: [ArraySlice<Unicode.Scalar>] = []
        var i = 0
        while i < s.count {
            let c = s[i]
            var end = i + 1
            if let special = Self.specialPatterns.first(where: { s[i...].starts(with: $0) }) {
                end = i + special.count
            } else if let n = contractionLength(s, at: i) {
                end = i + n
            } else if c.isLetter {
                while end < s.count && s[end].isLetter { end += 1 }
            } else if c.isNumber {
                end = i + 1
            } else if c.properties.isWhitespace {
                i += 1
                continue
            } else {
                while end < s.count && s[end].isOtherSymbol { end += 1 }
            }
            out.append(s[i..<end])
            i = end
        }
        return out
    }

    /// GPT-2's pattern `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+` on a piece
    /// without white space.
    func byteLevelPieces(_ s: ArraySlice<Unicode.Scalar>) -> [ArraySlice<Unicode.Scalar>] {
        let a = Array(s)
        var out: [ArraySlice<Unicode.Scalar>] = []
        var i = 0
        while i < a.count {
            var end = i + 1
            if let n = contractionLength(a, at: i) {
                end = i + n
            } else if a[i].isLetter {
                while end < a.count && a[end].isLetter { end += 1 }
            } else if a[i].isNumber {
                while end < a.count && a[end].isNumber { end += 1 }
            } else if a[i].properties.isWhitespace {
                while end < a.count && a[end].properties.isWhitespace { end += 1 }
            } else {
                while end < a.count && a[end].isOtherSymbol { end += 1 }
            }
            out.append(a[i..<end][...])
            i = end
        }
        return out
    }

    static let specialPatterns: [[Unicode.Scalar]] = ["<|startoftext|>", "<|endoftext|>"].map {
        Array($0.unicodeScalars)
    }

    /// The length of `'s|'t|'re|'ve|'m|'ll|'d` at `i`, if one starts there.
    func contractionLength(_ s: [Unicode.Scalar], at i: Int) -> Int? {
        guard s[i] == "'", i + 1 < s.count else { return nil }
        let next = s[i + 1]
        if next == "s" || next == "t" || next == "m" || next == "d" { return 2 }
        guard i + 2 < s.count else { return nil }
        let pair = (next, s[i + 2])
        if pair == ("r", "e") || pair == ("v", "e") || pair == ("l", "l") { return 3 }
        return nil
    }

    /// BPE of one byte-level word: its characters, `</w>` on the last, merged lowest rank first.
    func bpe(_ word: String) -> [String] {
        var symbols = word.unicodeScalars.map { String($0) }
        guard !symbols.isEmpty else { return [] }
        symbols[symbols.count - 1] += suffix
        // Symbols not in the vocabulary are unknown tokens and take part in no merge.
        let known = symbols.map { vocabulary[$0] != nil }
        if known.contains(false) {
            // Merge the known runs on their own; unknown symbols stay single.
            var out: [String] = []
            var run: [String] = []
            for (s, k) in zip(symbols, known) {
                if k {
                    run.append(s)
                } else {
                    out += merge(run)
                    run = []
                    out.append(s)
                }
            }
            return out + merge(run)
        }
        return merge(symbols)
    }

    /// Applies the merges to `symbols` until none applies.
    func merge(_ start: [String]) -> [String] {
        var symbols = start
        while symbols.count > 1 {
            var best: (rank: Int, pair: Pair)? = nil
            for i in 0..<(symbols.count - 1) {
                let pair = Pair(first: symbols[i], second: symbols[i + 1])
                if let rank = ranks[pair], rank < (best?.rank ?? .max) { best = (rank, pair) }
            }
            guard let best else { break }
            var merged: [String] = []
            merged.reserveCapacity(symbols.count)
            var i = 0
            while i < symbols.count {
                if i + 1 < symbols.count, symbols[i] == best.pair.first, symbols[i + 1] == best.pair.second {
                    merged.append(best.pair.first + best.pair.second)
                    i += 2
                } else {
                    merged.append(symbols[i])
                    i += 1
                }
            }
            symbols = merged
        }
        return symbols
    }
}

/// GPT-2's table from bytes to printable characters: printable Latin-1 bytes map to themselves, the others to
/// U+0100 upwards in byte order.
let byteToUnicode: [Unicode.Scalar] = {
    let kept = Array(33...126) + Array(161...172) + Array(174...255)
    var table = [Unicode.Scalar](repeating: " ", count: 256)
    for b in kept { table[b] = Unicode.Scalar(UInt32(b))! }
    var next: UInt32 = 256
    for b in 0..<256 where !kept.contains(b) {
        table[b] = Unicode.Scalar(next)!
        next += 1
    }
    return table
}()

extension Unicode.Scalar {
    /// `\p{L}`.
    var isLetter: Bool {
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
        default: return false
        }
    }

    /// `\p{N}`.
    var isNumber: Bool {
        switch properties.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber: return true
        default: return false
        }
    }

    /// `[^\s\p{L}\p{N}]`.
    var isOtherSymbol: Bool { !isLetter && !isNumber && !properties.isWhitespace }
}

// MARK: - Loading

extension CLIPTokenizer {
    /// The folder holding the tokenizer files of `directory`: the folder itself, its `tokenizer/`, or (for a
    /// pipeline's `text_encoder/`) the sibling `../tokenizer/`.
    public static func folder(for directory: URL) throws -> URL {
        let candidates = [
            directory, directory.appendingPathComponent("tokenizer"),
            directory.deletingLastPathComponent().appendingPathComponent("tokenizer"),
        ]
        let fm = FileManager.default
        for dir in candidates
        where fm.fileExists(atPath: dir.appendingPathComponent("tokenizer.json").path)
            || fm.fileExists(atPath: dir.appendingPathComponent("vocab.json").path)
        {
            return dir
        }
        throw CheckpointError(
            file: directory.path,
            "no tokenizer (looked for tokenizer.json or vocab.json + merges.txt here, in tokenizer/ and in "
                + "../tokenizer/)")
    }

    /// Reads a tokenizer folder as transformers 5 does: vocabulary, merges and added tokens from `tokenizer.json`
    /// when present, else `vocab.json` and `merges.txt`; the special tokens from `tokenizer_config.json`, which
    /// `special_tokens_map.json` overrides unless the config lists `added_tokens_decoder`. Errors name the file
    /// and key.
    public static func load(directory: URL, maxLength: Int = 77) throws -> CLIPTokenizer {
        let dir = try folder(for: directory)
        let fm = FileManager.default
        let tokenizerJSON = dir.appendingPathComponent("tokenizer.json")
        let configURL = dir.appendingPathComponent("tokenizer_config.json")
        let mapURL = dir.appendingPathComponent("special_tokens_map.json")
        let config = fm.fileExists(atPath: configURL.path) ? try readObject(configURL) : [:]

        var vocabulary: [String: Int]
        var merges: [(String, String)] = []
        var suffix = "</w>"
        var added: [String: AddedToken] = [:]
        var vocabSource = dir.path
        if fm.fileExists(atPath: tokenizerJSON.path) {
            let file = tokenizerJSON.path
            vocabSource = file
            let root = try readObject(tokenizerJSON)
            guard let model = root["model"] as? [String: Any] else {
                throw CheckpointError(file: file, key: "model", "missing or not an object")
            }
            if let type = model["type"] as? String, type != "BPE" {
                throw CheckpointError(file: file, key: "model.type", "unsupported value \(type) (supported: BPE)")
            }
            vocabulary = try intMap(model["vocab"], file: file, key: "model.vocab")
            guard let list = model["merges"] as? [Any] else {
                throw CheckpointError(file: file, key: "model.merges", "missing or not an array")
            }
            for (n, entry) in list.enumerated() {
                if let text = entry as? String {
                    let parts = text.split(separator: " ", omittingEmptySubsequences: false)
                    guard parts.count == 2 else {
                        throw CheckpointError(
                            file: file, key: "model.merges[\(n)]", "expected \"A B\", got \"\(text)\"")
                    }
                    merges.append((String(parts[0]), String(parts[1])))
                } else if let pair = entry as? [String], pair.count == 2 {
                    merges.append((pair[0], pair[1]))
                } else {
                    throw CheckpointError(file: file, key: "model.merges[\(n)]", "expected a pair of strings")
                }
            }
            if let s = model["end_of_word_suffix"] as? String { suffix = s }
            for case let entry as [String: Any] in root["added_tokens"] as? [Any] ?? [] {
                guard let token = addedToken(entry, id: (entry["id"] as? NSNumber)?.intValue) else {
                    throw CheckpointError(file: file, key: "added_tokens", "entry without content or id")
                }
                added[token.content] = token
            }
        } else {
            let vocabURL = dir.appendingPathComponent("vocab.json")
            vocabSource = vocabURL.path
            vocabulary = try intMap(try readJSON(vocabURL), file: vocabURL.path, key: nil)
            let mergesURL = dir.appendingPathComponent("merges.txt")
            vocabSource = mergesURL.path  // where a merge that does not fit the vocabulary is reported
            let text: String
            do {
                text = try String(contentsOf: mergesURL, encoding: .utf8)
            } catch {
                throw CheckpointError(file: mergesURL.path, "cannot read: \(error.localizedDescription)")
            }
            // As transformers 5 reads merges.txt: trimmed lines, skipping empty ones and `#` comments.
            for line in text.split(whereSeparator: \.isNewline) {
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
                let parts = trimmed.split(whereSeparator: { $0 == " " || $0 == "\t" })
                if parts.count == 2 { merges.append((String(parts[0]), String(parts[1]))) }
            }
        }

        // Special tokens and added tokens from the configs.
        var special: [String: (content: String, flags: AddedToken?)] = [:]
        func readSpecial(_ object: [String: Any]) {
            for key in ["bos_token", "eos_token", "unk_token", "pad_token"] {
                if let s = object[key] as? String {
                    special[key] = (s, nil)
                } else if let d = object[key] as? [String: Any], let t = addedToken(d, id: -1) {
                    special[key] = (t.content, t)
                }
            }
        }
        readSpecial(config)
        if let decoder = config["added_tokens_decoder"] as? [String: Any] {
            for (key, value) in decoder {
                guard let id = Int(key), let entry = value as? [String: Any], let token = addedToken(entry, id: id)
                else {
                    throw CheckpointError(file: configURL.path, key: "added_tokens_decoder.\(key)", "not a token")
                }
                if added[token.content] == nil { added[token.content] = token }
            }
        } else if fm.fileExists(atPath: mapURL.path) {
            readSpecial(try readObject(mapURL))
        }
        // Flags of special tokens named only in the configs: the last of bos, eos, unk, pad with that content.
        for key in ["bos_token", "eos_token", "unk_token", "pad_token"] {
            guard let (content, flags) = special[key], !fm.fileExists(atPath: tokenizerJSON.path),
                config["added_tokens_decoder"] == nil
            else { continue }
            let id = added[content]?.id ?? vocabulary[content]
            guard let id else { continue }  // reported by init, naming the key
            added[content] = AddedToken(
                content: content, id: id, normalized: flags?.normalized ?? false, lstrip: flags?.lstrip ?? false,
                rstrip: flags?.rstrip ?? false)
        }
        let sourceFor: (String) -> String = { key in
            if fm.fileExists(atPath: mapURL.path), config["added_tokens_decoder"] == nil,
                let map = try? readObject(mapURL), map[key] != nil
            {
                return mapURL.path
            }
            return configURL.path
        }
        let names = ["bos_token", "eos_token", "pad_token", "unk_token"]
        let defaults = ["bos_token": "<|startoftext|>"]
        let contents = Dictionary(
            uniqueKeysWithValues: names.map { ($0, special[$0]?.content ?? defaults[$0] ?? "<|endoftext|>") })
        do {
            return try CLIPTokenizer(
                vocabulary: vocabulary, merges: merges, bosToken: contents["bos_token"]!,
                eosToken: contents["eos_token"]!, padToken: contents["pad_token"]!, unkToken: contents["unk_token"]!,
                addedTokens: added.values.sorted { $0.id < $1.id }, maxLength: maxLength, endOfWordSuffix: suffix,
                source: vocabSource)
        } catch let error as CheckpointError where error.key?.hasSuffix("_token") == true {
            throw CheckpointError(file: sourceFor(error.key!), key: error.key, error.message)
        }
    }

    private static func readJSON(_ url: URL) throws -> Any {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw CheckpointError(file: url.path, "cannot read: \(error.localizedDescription)")
        }
        do {
            return try JSONSerialization.jsonObject(with: data)
        } catch {
            throw CheckpointError(file: url.path, "not valid JSON: \(error.localizedDescription)")
        }
    }

    private static func readObject(_ url: URL) throws -> [String: Any] {
        guard let object = try readJSON(url) as? [String: Any] else {
            throw CheckpointError(file: url.path, "not a JSON object")
        }
        return object
    }

    private static func intMap(_ value: Any?, file: String, key: String?) throws -> [String: Int] {
        guard let object = value as? [String: Any] else {
            throw CheckpointError(file: file, key: key, "expected an object of token → id")
        }
        var out: [String: Int] = [:]
        out.reserveCapacity(object.count)
        for (token, id) in object {
            guard let n = id as? NSNumber, n.doubleValue == n.doubleValue.rounded(), n.intValue >= 0 else {
                throw CheckpointError(
                    file: file, key: key.map { "\($0).\(token)" } ?? token, "id must be a non-negative integer")
            }
            out[token] = n.intValue
        }
        return out
    }

    private static func addedToken(_ entry: [String: Any], id: Int?) -> AddedToken? {
        guard let content = entry["content"] as? String, let id else { return nil }
        func flag(_ key: String) -> Bool { (entry[key] as? NSNumber)?.boolValue ?? false }
        return AddedToken(
            content: content, id: id, normalized: flag("normalized"), lstrip: flag("lstrip"), rstrip: flag("rstrip"))
    }
}
