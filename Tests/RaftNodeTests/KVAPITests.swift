import KVStore
import Raft
import Synchronization
import Testing
@testable import RaftNode
import Foundation  // JSONSerialization, to read replies as a client would

/// A replica that answers as told and records what it was asked: the API without a cluster.
private final class FakeReplica: KVReplica {
    let id: ReplicaID = 1
    let asked = Mutex<[String]>([])
    let answer: @Sendable (KVRequest?) -> KVReply
    let groupCount: Int
    var statuses: [RaftStatus] {
        (0..<groupCount).map { g in
            var s = RaftStatus()
            s.group = g; s.role = g == 1 ? .leader : .follower; s.term = 3; s.leader = g == 1 ? 1 : 2; s.commit = 7; s.applied = 7
            return s
        }
    }

    init(groups: Int = 1, _ answer: @escaping @Sendable (KVRequest?) -> KVReply) { self.groupCount = groups; self.answer = answer }

    func read(group: Int, _ key: String, _ consistency: ReadConsistency) async -> KVReply {
        asked.withLock { $0.append("read \(key) \(consistency.rawValue)" + (groupCount > 1 ? " g\(group)" : "")) }
        return answer(nil)
    }

    func write(group: Int, _ request: KVRequest) async -> KVReply {
        asked.withLock { $0.append("write \(request.client)#\(request.seq) \(request.command)" + (groupCount > 1 ? " g\(group)" : "")) }
        return answer(request)
    }
}

private func api(_ replica: FakeReplica) -> KVAPI {
    KVAPI(selfID: "A", members: [1: .init(id: "A", httpURL: "http://127.0.0.1:7101"), 2: .init(id: "B", httpURL: "http://127.0.0.1:7102")],
          replica: replica, defaultConsistency: .linearizable, syncMode: "fdatasync")
}

private func json(_ r: APIReply) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(r.body))) as? [String: Any] ?? [:]
}

@Test func aPutBecomesOneWriteWithItsClientAndSeq() async {
    let replica = FakeReplica { _ in .applied(.ok, index: 9) }
    let r = await api(replica).handle(method: "PUT", path: "/kv/greeting", query: nil,
                                      body: Array(#"{"client_id":"c1","seq":4,"value":"hello"}"#.utf8))
    #expect(r.status == 200 && json(r)["index"] as? Int == 9)
    #expect(replica.asked.withLock { $0 } == [#"write c1#4 put(key: "greeting", value: "hello")"#])
}

@Test func aFollowerRedirectsToItsLeaderWithThePathAndQuery() async {
    let replica = FakeReplica { _ in .notLeader(leader: 2) }
    let r = await api(replica).handle(method: "GET", path: "/kv/k%20x", query: "consistency=linearizable", body: [])
    #expect(r.status == 307)
    #expect(r.headers.first { $0.0 == "Location" }?.1 == "http://127.0.0.1:7102/kv/k%20x?consistency=linearizable")
    #expect(json(r)["leader"] as? String == "B" && json(r)["code"] as? String == "not_leader")
    #expect(replica.asked.withLock { $0 } == ["read k x linearizable"])
}

@Test func answersBecomeTheirStatusesAndCodes() async {
    let cases: [(KVReply, String, Int, String?)] = [
        (.value(nil, index: 3), "GET", 404, "not_found"),
        (.applied(.sequenceConflict(seq: 4), index: 5), "PUT", 409, "seq_conflict"),
        (.applied(.staleSequence(latest: 9), index: 5), "PUT", 409, "stale_sequence"),
        (.applied(.casFailed(current: "x"), index: 5), "PUT", 409, "cas_failed"),
        (.notLeader(leader: nil), "PUT", 503, "no_leader"),
        (.overloaded("64 MiB waiting"), "PUT", 503, "overloaded"),
        (.timedOut, "PUT", 503, "timeout"),
    ]
    for (reply, method, status, code) in cases {
        let r = await api(FakeReplica { _ in reply }).handle(method: method, path: "/kv/k", query: nil,
                                                            body: method == "PUT" ? Array(#"{"client_id":"c","seq":4,"value":"v"}"#.utf8) : [])
        #expect(r.status == status && json(r)["code"] as? String == code, "\(reply)")
    }
}

@Test func badRequestsNeverReachTheReplica() async {
    let replica = FakeReplica { _ in .applied(.ok, index: 1) }
    let a = api(replica)
    let bad: [(String, String, String, Int)] = [
        ("PUT", "/kv/k", #"{"client_id":"c","seq":-1,"value":"v"}"#, 400),
        ("POST", "/kv/cas", #"{"key":"k","value":"v"}"#, 400),
        ("PUT", "/kv/k", #"["v"]"#, 400),
        ("PUT", "/kv/" + String(repeating: "k", count: 2000), #"{"value":"v"}"#, 413),
        ("PATCH", "/kv/k", "", 405),
    ]
    for (method, path, body, status) in bad {
        let r = await a.handle(method: method, path: path, query: nil, body: Array(body.utf8))
        #expect(r.status == status, "\(method) \(path.prefix(20)) \(body): \(String(decoding: r.body, as: UTF8.self))")
    }
    #expect(replica.asked.withLock { $0 }.isEmpty)
}

@Test func statusNamesTheLeaderAndThePeersButNotItself() async {
    let r = await api(FakeReplica { _ in .timedOut }).handle(method: "GET", path: "/status", query: nil, body: [])
    let s = json(r)
    #expect(r.status == 200 && s["id"] as? String == "A" && s["leader"] as? String == "B")
    #expect(s["leader_addr"] as? String == "http://127.0.0.1:7102")
    #expect((s["peers"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == ["B"])
}

/// With 3 groups each key goes to group sha256(key)[0] % 3 ("user:42" 0, "k" 1, "wrk-0" 2); an
/// mput across groups is refused, naming them, before it reaches any; /status lists every group.
@Test func keysGoToTheirGroupsAndAnMputMustStayInOne() async {
    let replica = FakeReplica(groups: 3) { _ in .applied(.ok, index: 4) }
    let a = api(replica)
    for key in ["user:42", "k", "wrk-0"] { _ = await a.handle(method: "GET", path: "/kv/" + key, query: "consistency=stale", body: []) }
    let same = await a.handle(method: "POST", path: "/kv/mput", query: nil,
                              body: Array(#"{"entries":[{"key":"k","value":"1"},{"key":"key-1","value":"2"}]}"#.utf8))
    #expect(same.status == 200)
    let across = await a.handle(method: "POST", path: "/kv/mput", query: nil,
                                body: Array(#"{"entries":[{"key":"k","value":"1"},{"key":"user:42","value":"2"}]}"#.utf8))
    #expect(across.status == 400 && json(across)["code"] as? String == "cross_group")
    #expect((json(across)["error"] as? String)?.contains("group 0: 'user:42'; group 1: 'k'") == true, "\(json(across))")
    #expect(replica.asked.withLock { $0 } == [
        "read user:42 stale g0", "read k stale g1", "read wrk-0 stale g2",
        #"write #0 mput([KVStore.KeyValue(key: "k", value: "1"), KVStore.KeyValue(key: "key-1", value: "2")]) g1"#,
    ])
    let status = json(await a.handle(method: "GET", path: "/status", query: nil, body: []))
    let groups = status["groups"] as? [[String: Any]] ?? []
    #expect(groups.map { $0["id"] as? Int } == [0, 1, 2])
    #expect(groups.map { $0["leader"] as? String } == ["B", "A", "B"] && groups[1]["role"] as? String == "leader")
    #expect(status["role"] as? String == "follower", "the top level is group 0's")
}
