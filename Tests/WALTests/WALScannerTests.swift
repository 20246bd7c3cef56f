import Testing
@testable import WAL

@Test func crc32cMatchesTheKnownCheckValue() {
    // The standard check value: CRC-32C of "123456789" (RFC 3720, appendix B.4).
    #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
    #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
}

private func file(_ records: [WALRecord]) -> [UInt8] { records.flatMap { $0.framed() } }

private let sample = (0..<5).map { WALRecord(type: UInt8($0 % 3), payload: Array("record \($0) ".utf8) + [UInt8](repeating: UInt8($0), count: $0 * 7)) }

@Test func wholeRecordsReadBackAndAZeroTailIsClean() {
    let bytes = file(sample)
    let scan = WALScanner.scan(bytes)
    #expect(scan.records == sample && scan.end == .clean && scan.validLength == bytes.count)
    let preallocated = WALScanner.scan(bytes + [UInt8](repeating: 0, count: 4096))
    #expect(preallocated.records == sample && preallocated.end == .clean && preallocated.validLength == bytes.count)
}

/// A crash can cut the last write anywhere: every cut gives the records before it and a torn tail
/// at the last record's start, never a record that was not whole.
@Test func everyCutOfTheLastRecordIsATornTail() {
    let whole = file(sample)
    let lastStart = file(Array(sample.dropLast())).count
    for cut in (lastStart + 1)..<whole.count {
        let scan = WALScanner.scan(Array(whole[..<cut]))
        #expect(scan.records == Array(sample.dropLast()), "cut at \(cut)")
        guard case .tornTail(let offset, _) = scan.end else { Issue.record("cut at \(cut): \(scan.end)"); continue }
        #expect(offset == lastStart && scan.validLength == lastStart)
    }
}

/// etcd's rule: a checksum failure is a torn write only if a sector of the record is still zero
/// (the crash came before the disk wrote it); with every sector written, it is damage.
@Test func aLastRecordWithAZeroSectorIsTornButAFlippedBitIsCorruption() {
    let big = sample + [WALRecord(type: 2, payload: [UInt8](repeating: 0x5A, count: 1500))]
    let lastStart = file(sample).count
    var torn = file(big) + [UInt8](repeating: 0, count: 4096)
    let sector = (lastStart / WALScanner.sectorSize + 2) * WALScanner.sectorSize
    for k in sector..<(sector + WALScanner.sectorSize) { torn[k] = 0 }  // this sector never reached the disk
    let scan = WALScanner.scan(torn)
    #expect(scan.records == sample)
    guard case .tornTail(let at, let why) = scan.end else { Issue.record("expected a torn tail, got \(scan.end)"); return }
    #expect(at == lastStart && why.contains("still zero"))

    var flipped = file(big) + [UInt8](repeating: 0, count: 4096)
    flipped[lastStart + 700] ^= 0x40
    guard case .corrupt(let offset, let reason) = WALScanner.scan(flipped).end else { Issue.record("expected corruption"); return }
    #expect(offset == lastStart && reason.contains("every sector was written"))
}

@Test func damageBeforeTheTailIsCorruption() {
    var middle = file(sample)
    let secondStart = sample[0].framed().count
    middle[secondStart + 10] ^= 0x01
    let scan = WALScanner.scan(middle)
    #expect(scan.records == [sample[0]])
    guard case .corrupt(let offset, let reason) = scan.end else { Issue.record("expected corruption, got \(scan.end)"); return }
    #expect(offset == secondStart && reason.contains("bytes of records after it"))
}

/// A damaged length field must never pass for a torn tail: wherever it points (into the zeros of
/// a preallocated segment, past the end of the file, out of range), the records it hides may be
/// synced and acknowledged, and cutting there would lose them.
@Test func aDamagedLengthInTheMiddleIsCorruptionWhereverItPoints() {
    let preallocated = file(sample) + [UInt8](repeating: 0, count: 8192)
    let secondStart = sample[0].framed().count
    func withLength(_ bytes: [UInt8], _ length: UInt32) -> [UInt8] {
        var b = bytes
        for k in 0..<4 { b[secondStart + k] = UInt8(truncatingIfNeeded: length >> (8 * UInt32(k))) }
        return b
    }
    let cases: [(String, [UInt8])] = [
        ("into the preallocated zeros", withLength(preallocated, 2000)),
        ("past the end of a preallocated file", withLength(preallocated, 60_000)),
        ("past the end of an unpreallocated file", withLength(file(sample), 4000)),
        ("out of range", withLength(preallocated, UInt32(WALRecord.maxBodySize + 1))),
        ("zero", withLength(preallocated, 0)),
    ]
    for (name, bytes) in cases {
        let scan = WALScanner.scan(bytes)
        #expect(scan.records == [sample[0]], "\(name)")
        guard case .corrupt(let offset, _) = scan.end else { Issue.record("length \(name): \(scan.end), not corruption"); continue }
        #expect(offset == secondStart, "\(name)")
    }
}

/// Seeded random damage to random files: the scanner never traps and never returns a record that
/// was not written whole.
@Test func randomDamageNeverYieldsARecordThatWasNotWritten() {
    var state: UInt64 = 7
    func next(_ n: Int) -> Int {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Int((state >> 33) % UInt64(n))
    }
    for _ in 0..<2000 {
        let records = (0..<(1 + next(6))).map { _ in WALRecord(type: UInt8(next(4)), payload: (0..<next(40)).map { _ in UInt8(next(256)) }) }
        var bytes = file(records)
        for _ in 0..<(1 + next(3)) { bytes[next(bytes.count)] = UInt8(next(256)) }
        if next(2) == 0 { bytes.removeLast(next(bytes.count)) }
        let scan = WALScanner.scan(bytes)
        #expect(scan.records.count <= records.count)
        #expect(Array(records.prefix(scan.records.count)) == scan.records)
    }
}

/// A header the disk never wrote (zeros) with a later sector of the same write after it: torn, as
/// long as no whole record follows. A few zero bytes at a record's edge are not a torn sector.
@Test func aZeroHeaderIsTornAndAShortZeroEdgeIsNot() {
    var bytes = file(sample) + [UInt8](repeating: 0, count: 2048)
    let end = file(sample).count
    bytes[end + 600] = 0x77  // a later sector of the last write reached the disk; its header did not
    guard case .tornTail(let at, let why) = WALScanner.scan(bytes).end else { Issue.record("expected a torn tail"); return }
    #expect(at == end && why.contains("never written"))

    // A synced last record that happens to end in zeros, then damaged: not taken for torn.
    let zeroEnded = sample + [WALRecord(type: 1, payload: Array("hard state".utf8) + [0, 0, 0])]
    var damaged = file(zeroEnded) + [UInt8](repeating: 0, count: 1024)
    damaged[file(sample).count + 10] ^= 0x01
    guard case .corrupt = WALScanner.scan(damaged).end else { Issue.record("expected corruption, got \(WALScanner.scan(damaged).end)"); return }
}
