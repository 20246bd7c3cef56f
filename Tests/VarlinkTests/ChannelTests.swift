import NIOCore
import NIOEmbedded
import Testing
@testable import Varlink

private func bytes(_ s: String) -> ByteBuffer { ByteBuffer(string: s) }
private func text(_ b: ByteBuffer?) -> String? { b.map { String(buffer: $0) } }

@Test func nulFramesAreSplitAcrossAndWithinReads() throws {
    let channel = EmbeddedChannel(handler: ByteToMessageHandler(NULFrameDecoder(maxLength: 16)))
    try channel.writeInbound(bytes("a\0bc\0d"))
    #expect(text(try channel.readInbound(as: ByteBuffer.self)) == "a")
    #expect(text(try channel.readInbound(as: ByteBuffer.self)) == "bc")
    #expect(try channel.readInbound(as: ByteBuffer.self) == nil, "d waits for its NUL")
    try channel.writeInbound(bytes("e\0"))
    #expect(text(try channel.readInbound(as: ByteBuffer.self)) == "de")
    #expect(throws: NULFrameDecoder.TooLong.self) { try channel.writeInbound(bytes(String(repeating: "x", count: 17))) }
    _ = try? channel.finish()
}

/// The rule: read-only calls are answered on the event loop until one call goes on to the
/// connection's task; from then on every call goes there too, so replies keep call order.
@Test func immediateRepliesStopOnceACallHasGoneToTheTask() throws {
    let channel = EmbeddedChannel(handler: ImmediateReplies { frame in
        String(buffer: frame).hasPrefix("read") ? ByteBuffer(string: "answer:" + String(buffer: frame)) : nil
    })
    try channel.writeInbound(bytes("read1"))
    #expect(text(try channel.readOutbound(as: ByteBuffer.self)) == "answer:read1")
    #expect(try channel.readInbound(as: ByteBuffer.self) == nil)
    try channel.writeInbound(bytes("write1"))
    #expect(text(try channel.readInbound(as: ByteBuffer.self)) == "write1")
    try channel.writeInbound(bytes("read2"))
    #expect(try channel.readOutbound(as: ByteBuffer.self) == nil, "read2 was answered ahead of write1's reply")
    #expect(text(try channel.readInbound(as: ByteBuffer.self)) == "read2")
    _ = try? channel.finish()
}

@Test func aSilentConnectionIsClosedAtTheDeadlineWithAReason() throws {
    let channel = EmbeddedChannel(handler: MessageDeadlineHandler(limit: .seconds(5), farewell: bytes("bye\0")))
    try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    channel.embeddedEventLoop.advanceTime(by: .milliseconds(4900))
    #expect(channel.isActive)
    channel.embeddedEventLoop.advanceTime(by: .milliseconds(200))
    #expect(text(try channel.readOutbound(as: ByteBuffer.self)) == "bye\0")
    #expect(!channel.isActive)
}

@Test func aCompletedMessageStopsTheDeadlineAndAPartialOneRestartsIt() throws {
    let channel = EmbeddedChannel(handler: MessageDeadlineHandler(limit: .seconds(5), farewell: nil))
    try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    channel.embeddedEventLoop.advanceTime(by: .seconds(4))
    try channel.writeInbound(bytes("{\"method\":\"x\"}\0"))
    channel.embeddedEventLoop.advanceTime(by: .seconds(60))
    #expect(channel.isActive, "a client between calls is left alone")
    try channel.writeInbound(bytes("{\"meth"))
    channel.embeddedEventLoop.advanceTime(by: .seconds(4))
    try channel.writeInbound(bytes("od\":\"x\"}\0{\"m"))  // completes one, starts the next
    channel.embeddedEventLoop.advanceTime(by: .seconds(4))
    #expect(channel.isActive)
    channel.embeddedEventLoop.advanceTime(by: .seconds(2))
    #expect(!channel.isActive, "the second message was never completed")
}
