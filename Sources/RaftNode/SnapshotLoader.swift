import KVStore
import Raft
import RaftStorage

/// Turns a snapshot file's chunks back into a store, one chunk at a time: the node's own at start
/// (chunks handed over by `DiskStorage.open` as it checks the file) and a leader's once received.
/// A file written before chunked snapshots holds the whole state in format 1, in one "chunk".
final class SnapshotLoader {
    private var assembler = SnapshotAssembler()
    private var legacy: KVStateMachine?

    var wasLegacy: Bool { legacy != nil }

    func add(_ chunk: [UInt8]) throws {
        if assembler.chunks == 0, legacy == nil, chunk.first == 1 {
            legacy = try KVStateMachine(snapshot: chunk)
        } else {
            try assembler.add(chunk)
        }
    }

    /// The store; its applied index must be the snapshot's.
    func finish(index: LogIndex) throws -> KVStateMachine {
        let state = try legacy ?? assembler.finish()
        guard state.applied == index.value else {
            throw DecodeFailure(description: "the snapshot file is of index \(index) but its state was applied through \(state.applied)")
        }
        return state
    }

    static func load(_ path: String) throws -> KVStateMachine {
        let loader = SnapshotLoader()
        let meta = try SnapshotFile.read(path, chunk: loader.add)
        guard !loader.wasLegacy else { throw DecodeFailure(description: "a format-1 snapshot where chunks belong") }
        return try loader.finish(index: meta.index)
    }

    static func rewrite(_ state: KVStateMachine, storage: DiskStorage, group: Int, index: LogIndex, term: Term) throws {
        let writer = try SnapshotFile.Writer(path: storage.snapshotPath(group: group, index: index, term: term), index: index, term: term)
        try writer.write(SnapshotChunks(state))
        try storage.install(group: group, snapshotAt: writer.tempPath, index: index, term: term, replacesLog: false)
    }
}

struct DecodeFailure: Error, CustomStringConvertible { var description: String }
