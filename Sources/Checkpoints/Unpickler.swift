import Foundation

/// A storage that a pickled tensor refers to: `('storage', torch.<X>Storage, key, location, numel)`.
struct TorchStorageRef: Sendable {
    /// The storage class name, e.g. `"FloatStorage"`.
    let storageType: String
    /// The name of the storage's file under `<prefix>/data/`.
    let key: String
    /// Number of elements the pickle claims.
    let numel: Int
}

/// A tensor as `torch._utils._rebuild_tensor_v2` describes it; its data is read later.
struct TorchTensorRecord: Sendable {
    let storage: TorchStorageRef
    let offset: Int
    let size: [Int]
    let stride: [Int]
}

/// A mutable list shared by reference, as pickle's memo requires.
final class PickleList {
    var items: [PickleValue] = []
}

/// A mutable dict (insertion-ordered) shared by reference.
final class PickleDict {
    var items: [(PickleValue, PickleValue)] = []
}

/// The values a restricted unpickler can build: plain data, whitelisted globals, storages, tensors.
enum PickleValue {
    case none
    case bool(Bool)
    case int(Int)
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case tuple([PickleValue])
    case list(PickleList)
    case dict(PickleDict)
    case global(module: String, name: String)
    case storage(TorchStorageRef)
    case tensor(TorchTensorRecord)

    var kind: String {
        switch self {
        case .none: "None"
        case .bool: "bool"
        case .int: "int"
        case .float: "float"
        case .string: "str"
        case .bytes: "bytes"
        case .tuple: "tuple"
        case .list: "list"
        case .dict: "dict"
        case .global(let m, let n): "\(m).\(n)"
        case .storage: "storage"
        case .tensor: "tensor"
        }
    }
}

/// A pickle interpreter that never executes anything: it accepts only the globals `torch.save` uses for a
/// state dict and interprets calls to them itself. Any other global is refused by name.
struct RestrictedUnpickler {
    /// Callables whose calls we interpret.
    static let callables: Set<String> = [
        "collections.OrderedDict",
        "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_parameter",
        "torch._utils._rebuild_parameter_with_state",
    ]
    /// Non-callable torch globals that may appear as arguments.
    static let dtypes: Set<String> = ["torch.float32", "torch.float16", "torch.bfloat16"]

    let file: String
    /// The pickle's name inside the archive, used as the error key.
    let entry: String
    private let r: ByteReader
    private var pos = 0
    private var stack: [PickleValue] = []
    private var marks: [Int] = []
    private var memo: [Int: PickleValue] = [:]

    init(_ bytes: UnsafeRawBufferPointer, file: String, entry: String) {
        self.file = file
        self.entry = entry
        r = ByteReader(bytes, file: file, key: entry)
    }

    private func fail(_ message: String) -> CheckpointError {
        CheckpointError(file: file, key: entry, message)
    }

    /// Whether `module.name` may be referenced at all.
    static func isAllowed(module: String, name: String) -> Bool {
        let qualified = "\(module).\(name)"
        if callables.contains(qualified) || dtypes.contains(qualified) { return true }
        return module == "torch" && name.hasSuffix("Storage") && name.allSatisfy { $0.isLetter || $0.isNumber }
    }

    /// Runs the pickle to its STOP and returns the value it leaves.
    mutating func load() throws -> PickleValue {
        while true {
            let opcode = try r.u8(pos, "opcode")
            let at = pos
            pos += 1
            switch opcode {
            case 0x80: pos += 1  // PROTO
            case 0x95: pos += 8  // FRAME: framing is only a hint
            case 0x2E:  // STOP
                guard let top = stack.popLast(), stack.isEmpty, marks.isEmpty else {
                    throw fail("STOP with \(stack.count) values on the stack")
                }
                return top
            case 0x28: marks.append(stack.count)  // MARK
            case 0x7D: stack.append(.dict(PickleDict()))  // EMPTY_DICT
            case 0x5D: stack.append(.list(PickleList()))  // EMPTY_LIST
            case 0x29: stack.append(.tuple([]))  // EMPTY_TUPLE
            case 0x4E: stack.append(.none)  // NONE
            case 0x88: stack.append(.bool(true))  // NEWTRUE
            case 0x89: stack.append(.bool(false))  // NEWFALSE
            case 0x4B:
                stack.append(.int(Int(try r.u8(pos))))
                pos += 1  // BININT1
            case 0x4D:
                stack.append(.int(Int(try r.u16(pos))))
                pos += 2  // BININT2
            case 0x4A:
                stack.append(.int(Int(Int32(bitPattern: try r.u32(pos)))))
                pos += 4  // BININT
            case 0x8A:  // LONG1
                let n = Int(try r.u8(pos))
                stack.append(.int(try long(at: pos + 1, length: n)))
                pos += 1 + n
            case 0x8B:  // LONG4
                let n = Int(try r.u32(pos))
                stack.append(.int(try long(at: pos + 4, length: n)))
                pos += 4 + n
            case 0x47:  // BINFLOAT, big-endian
                let bits = UInt64(bigEndian: UInt64(littleEndian: try r.u64(pos)))
                stack.append(.float(Double(bitPattern: bits)))
                pos += 8
            case 0x58: stack.append(.string(try text(lengthBytes: 4)))  // BINUNICODE
            case 0x8D: stack.append(.string(try text(lengthBytes: 8)))  // BINUNICODE8
            case 0x8C: stack.append(.string(try text(lengthBytes: 1)))  // SHORT_BINUNICODE
            case 0x42: stack.append(.bytes(try blob(lengthBytes: 4)))  // BINBYTES
            case 0x43: stack.append(.bytes(try blob(lengthBytes: 1)))  // SHORT_BINBYTES
            case 0x8E: stack.append(.bytes(try blob(lengthBytes: 8)))  // BINBYTES8
            case 0x71:
                memo[Int(try r.u8(pos))] = try top()
                pos += 1  // BINPUT
            case 0x72:
                memo[Int(try r.u32(pos))] = try top()
                pos += 4  // LONG_BINPUT
            case 0x94: memo[memo.count] = try top()  // MEMOIZE
            case 0x68:
                stack.append(try memoValue(Int(try r.u8(pos))))
                pos += 1  // BINGET
            case 0x6A:
                stack.append(try memoValue(Int(try r.u32(pos))))
                pos += 4  // LONG_BINGET
            case 0x30: _ = try pop()  // POP
            case 0x31: _ = try popMark()  // POP_MARK
            case 0x32: stack.append(try top())  // DUP
            case 0x63:  // GLOBAL "module\nname\n"
                let module = try line()
                let name = try line()
                stack.append(try global(module, name))
            case 0x93:  // STACK_GLOBAL
                let name = try pop()
                let module = try pop()
                guard case .string(let n) = name, case .string(let m) = module else {
                    throw fail("STACK_GLOBAL needs two strings")
                }
                stack.append(try global(m, n))
            case 0x74: stack.append(.tuple(try popMark()))  // TUPLE
            case 0x85: stack.append(.tuple(try pop(1)))  // TUPLE1
            case 0x86: stack.append(.tuple(try pop(2)))  // TUPLE2
            case 0x87: stack.append(.tuple(try pop(3)))  // TUPLE3
            case 0x61:  // APPEND
                let v = try pop()
                try list(try top()).items.append(v)
            case 0x65:  // APPENDS
                let vs = try popMark()
                try list(try top()).items.append(contentsOf: vs)
            case 0x73:  // SETITEM
                let v = try pop()
                let k = try pop()
                try dict(try top()).items.append((k, v))
            case 0x75:  // SETITEMS
                let kvs = try popMark()
                guard kvs.count % 2 == 0 else { throw fail("SETITEMS with an odd number of values") }
                let d = try dict(try top())
                for i in stride(from: 0, to: kvs.count, by: 2) { d.items.append((kvs[i], kvs[i + 1])) }
            case 0x52:  // REDUCE
                let args = try pop()
                let callable = try pop()
                guard case .tuple(let a) = args else { throw fail("REDUCE arguments are not a tuple") }
                stack.append(try call(callable, a))
            case 0x81:  // NEWOBJ: cls.__new__(cls, *args), interpreted like a call
                let args = try pop()
                let cls = try pop()
                guard case .tuple(let a) = args else { throw fail("NEWOBJ arguments are not a tuple") }
                stack.append(try call(cls, a))
            case 0x62:  // BUILD: state for dicts (OrderedDict's _metadata) and tensors is not needed
                _ = try pop()
                switch try top() {
                case .dict, .tensor: break
                case let other: throw fail("BUILD on \(other.kind) is not supported")
                }
            case 0x51:  // BINPERSID
                stack.append(try persistent(try pop()))
            default:
                throw fail("unsupported pickle opcode 0x\(String(opcode, radix: 16)) at byte \(at)")
            }
        }
    }

    private mutating func pop() throws -> PickleValue {
        guard stack.count > (marks.last ?? 0), let v = stack.popLast() else {
            throw fail("stack underflow at byte \(pos - 1)")
        }
        return v
    }

    private mutating func pop(_ n: Int) throws -> [PickleValue] {
        var out: [PickleValue] = []
        for _ in 0..<n { out.append(try pop()) }
        return out.reversed()
    }

    private mutating func popMark() throws -> [PickleValue] {
        guard let m = marks.popLast() else { throw fail("no MARK on the stack at byte \(pos - 1)") }
        let items = Array(stack[m...])
        stack.removeSubrange(m...)
        return items
    }

    private func top() throws -> PickleValue {
        guard let v = stack.last else { throw fail("empty stack at byte \(pos - 1)") }
        return v
    }

    private func memoValue(_ i: Int) throws -> PickleValue {
        guard let v = memo[i] else { throw fail("memo entry \(i) is not set") }
        return v
    }

    private func list(_ v: PickleValue) throws -> PickleList {
        guard case .list(let l) = v else { throw fail("APPEND to \(v.kind)") }
        return l
    }

    private func dict(_ v: PickleValue) throws -> PickleDict {
        guard case .dict(let d) = v else { throw fail("SETITEM on \(v.kind)") }
        return d
    }

    private func long(at offset: Int, length: Int) throws -> Int {
        guard length <= 8 else { throw fail("integer of \(length) bytes is too large") }
        let bytes = try r.slice(offset, length, "long")
        var value: UInt64 = 0
        for (i, b) in bytes.enumerated() { value |= UInt64(b) << (8 * UInt64(i)) }
        if length > 0, length < 8, bytes[length - 1] & 0x80 != 0 {
            value |= ~UInt64(0) << (8 * UInt64(length))  // sign-extend
        }
        return Int(Int64(bitPattern: value))
    }

    private mutating func blob(lengthBytes: Int) throws -> [UInt8] {
        let n: UInt64
        switch lengthBytes {
        case 1: n = UInt64(try r.u8(pos))
        case 4: n = UInt64(try r.u32(pos))
        default: n = try r.u64(pos)
        }
        guard n <= UInt64(r.bytes.count) else { throw fail("length \(n) runs past the end of the pickle") }
        let data = try r.slice(pos + lengthBytes, Int(n), "string")
        pos += lengthBytes + Int(n)
        return Array(data)
    }

    private mutating func text(lengthBytes: Int) throws -> String {
        let bytes = try blob(lengthBytes: lengthBytes)
        guard let s = String(bytes: bytes, encoding: .utf8) else { throw fail("string is not UTF-8") }
        return s
    }

    private mutating func line() throws -> String {
        var end = pos
        while try r.u8(end, "GLOBAL name") != 0x0A { end += 1 }
        let s = String(decoding: try r.slice(pos, end - pos, "GLOBAL name"), as: UTF8.self)
        pos = end + 1
        return s
    }

    private func global(_ module: String, _ name: String) throws -> PickleValue {
        guard Self.isAllowed(module: module, name: name) else {
            throw fail(
                "refused global '\(module).\(name)': only the globals torch needs to rebuild a state dict are allowed")
        }
        return .global(module: module, name: name)
    }

    private func persistent(_ pid: PickleValue) throws -> PickleValue {
        guard case .tuple(let t) = pid, t.count == 5, case .string("storage") = t[0],
            case .global("torch", let storageType) = t[1], case .string(let key) = t[2],
            case .int(let numel) = t[4], numel >= 0
        else {
            throw fail("unsupported persistent id (expected ('storage', type, key, location, numel))")
        }
        return .storage(TorchStorageRef(storageType: storageType, key: key, numel: numel))
    }

    /// Interprets a call to one of `callables`; nothing is ever executed.
    private func call(_ callable: PickleValue, _ args: [PickleValue]) throws -> PickleValue {
        guard case .global(let module, let name) = callable else {
            throw fail("cannot call a \(callable.kind)")
        }
        switch "\(module).\(name)" {
        case "collections.OrderedDict":
            guard args.isEmpty else { throw fail("OrderedDict with arguments is not supported") }
            return .dict(PickleDict())
        case "torch._utils._rebuild_tensor_v2":
            guard args.count == 6 || args.count == 7, case .storage(let storage) = args[0],
                case .int(let offset) = args[1], let size = ints(args[2]), let stride = ints(args[3])
            else {
                throw fail("unexpected arguments to _rebuild_tensor_v2")
            }
            return .tensor(TorchTensorRecord(storage: storage, offset: offset, size: size, stride: stride))
        case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state":
            guard args.count >= 3, case .tensor = args[0] else {
                throw fail("unexpected arguments to \(name)")
            }
            return args[0]
        default:
            throw fail("global '\(module).\(name)' cannot be called")
        }
    }

    private func ints(_ v: PickleValue) -> [Int]? {
        guard case .tuple(let items) = v else { return nil }
        var out: [Int] = []
        for item in items {
            guard case .int(let i) = item else { return nil }
            out.append(i)
        }
        return out
    }
}
