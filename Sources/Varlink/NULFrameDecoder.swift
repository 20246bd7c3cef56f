import NIOCore

/// Splits a Varlink stream at NUL bytes. A message longer than `maxLength` is an error: the
/// connection is answered and closed rather than buffered without bound.
struct NULFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer
    let maxLength: Int

    struct TooLong: Error {}

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let nul = buffer.readableBytesView.firstIndex(of: 0) else {
            if buffer.readableBytes > maxLength { throw TooLong() }
            return .needMoreData
        }
        let length = nul - buffer.readerIndex
        if length > maxLength { throw TooLong() }
        let frame = buffer.readSlice(length: length)!
        buffer.moveReaderIndex(forwardBy: 1)
        context.fireChannelRead(Self.wrapInboundOut(frame))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
        return .needMoreData
    }
}
