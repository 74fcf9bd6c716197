package server

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	protov2 "google.golang.org/protobuf/proto"
)

// Requests that do not decode are the client's mistake, so they should fail
// with INVALID_ARGUMENT; grpc-go fails them with INTERNAL. Rewriting the code
// after the fact does not work: in grpc-go 1.85 a unary request is read
// through the same serverStream.RecvMsg as a streamed one, and RecvMsg
// writes the failure status to the client itself before it returns. So the
// decode error must never reach grpc-go. The server's codec (decodeCodec)
// decodes a request that arrives wrapped in a decodeTarget without failing,
// and leaves the error in the target; the services are registered with
// handlers (decodeDesc) that wrap every request that way and return the
// error as INVALID_ARGUMENT. Every other failure while reading a request
// (a message over the size limit is RESOURCE_EXHAUSTED, say) is grpc-go's,
// unchanged.

// decodeTarget is a request message on its way through decodeCodec.
type decodeTarget struct {
	msg any   // the request message to decode into
	err error // why it did not decode, set by decodeCodec
}

// decodeCodec is the server's codec: protobuf, except that it reports a
// request wrapped in a decodeTarget that does not decode through the target
// instead of failing. Install it with decodeCodecOption; a server that
// forces another codec must not register services with decodeDesc.
type decodeCodec struct{}

// decodeCodecOption makes decodeCodec the server's codec.
func decodeCodecOption() grpc.ServerOption { return grpc.ForceServerCodecV2(decodeCodec{}) }

func (decodeCodec) base() encoding.CodecV2 { return encoding.GetCodecV2(proto.Name) }

// Marshal encodes with the protobuf codec; a backupFrame as the
// BackupResponse it stands for, without copying its data.
func (c decodeCodec) Marshal(v any) (mem.BufferSlice, error) {
	if f, ok := v.(*backupFrame); ok {
		return f.marshal()
	}
	return c.base().Marshal(v)
}

// Unmarshal decodes with the protobuf codec, into a decodeTarget's message
// when given one.
func (c decodeCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if t, ok := v.(*decodeTarget); ok {
		t.err = c.base().Unmarshal(data, t.msg)
		return nil
	}
	return c.base().Unmarshal(data, v)
}

// Name is the protobuf codec's name, the content-subtype it serves.
func (decodeCodec) Name() string { return proto.Name }

// decodeRequest reads one request into m with recv (a unary handler's dec
// or a stream's RecvMsg), turning a request that does not decode into
// INVALID_ARGUMENT.
func decodeRequest(recv func(any) error, m any) error {
	t := &decodeTarget{msg: m}
	if err := recv(t); err != nil {
		return err
	}
	if t.err != nil {
		name := "request"
		if pm, ok := m.(protov2.Message); ok {
			name = string(pm.ProtoReflect().Descriptor().FullName())
		}
		return status.Errorf(codes.InvalidArgument, "the request is not a valid %s message: %v", name, t.err)
	}
	return nil
}

// decodeStream is a server stream whose requests are read by decodeRequest.
type decodeStream struct {
	grpc.ServerStream
}

// RecvMsg reads the next request into m.
func (s decodeStream) RecvMsg(m any) error { return decodeRequest(s.ServerStream.RecvMsg, m) }

// decodeDesc returns a copy of desc whose handlers read requests with
// decodeRequest, so that a request that does not decode fails with
// INVALID_ARGUMENT. The server must use decodeCodecOption.
func decodeDesc(desc *grpc.ServiceDesc) *grpc.ServiceDesc {
	out := *desc
	out.Methods = make([]grpc.MethodDesc, len(desc.Methods))
	for i, m := range desc.Methods {
		h := m.Handler
		m.Handler = func(srv any, ctx context.Context, dec func(any) error, in grpc.UnaryServerInterceptor) (any, error) {
			return h(srv, ctx, func(m any) error { return decodeRequest(dec, m) }, in)
		}
		out.Methods[i] = m
	}
	out.Streams = make([]grpc.StreamDesc, len(desc.Streams))
	for i, s := range desc.Streams {
		h := s.Handler
		s.Handler = func(srv any, stream grpc.ServerStream) error { return h(srv, decodeStream{stream}) }
		out.Streams[i] = s
	}
	return &out
}
