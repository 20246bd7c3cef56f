import Core
import NIOCore

/// Every directed link proxy of the cluster: node X reaches peer Y at `port(from: X, to: Y)`.
public final class LinkTable: Sendable {
    private let links: [LinkProxy]

    public static func start(nodes: [NodeConfig], group: any EventLoopGroup) async throws -> LinkTable {
        var links: [LinkProxy] = []
        for from in nodes {
            for to in nodes where to.id != from.id {
                links.append(try await LinkProxy.start(from: from.id, to: to.id, target: to, group: group))
            }
        }
        return LinkTable(links: links)
    }

    init(links: [LinkProxy]) { self.links = links }

    public func port(from: NodeID, to: NodeID) -> Int? {
        links.first { $0.from == from && $0.to == to }?.port
    }

    /// kvnode's `--peers` for `node`: each other node as ID=127.0.0.1:PORT of the proxy that leads to it.
    public func peerAddresses(for node: NodeID, among nodes: [NodeConfig]) -> String {
        nodes.filter { $0.id != node }.map { "\($0.id)=127.0.0.1:\(port(from: node, to: $0.id) ?? $0.port)" }
            .joined(separator: ",")
    }

    /// Links carrying traffic into or out of `node` (only out of it, or only into it, with a
    /// `direction`), limited to `peers` when given.
    public func touching(_ node: NodeID, peers: [NodeID]?, direction: LinkDirection? = nil) -> [LinkProxy] {
        links.filter { link in
            let other: NodeID
            if link.from == node && direction != .in { other = link.to }
            else if link.to == node && direction != .out { other = link.from }
            else { return false }
            return peers.map { $0.contains(other) } ?? true
        }
    }

    public var all: [LinkProxy] { links }

    public func closeAll() async {
        for link in links { await link.close() }
    }
}
