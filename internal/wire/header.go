package wire

import "encoding/binary"

// Header is the fixed part of a message, as read by ParseHeader.
type Header struct {
	// Type is the message type.
	Type MessageType
	// Length is the number of attribute bytes after the header.
	Length int
	// Cookie is bytes 4 to 8: MagicCookie unless the message is an
	// RFC 3489 one or no STUN at all.
	Cookie uint32
}

// ParseHeader checks the header at the start of b as far as the header
// alone allows, in RFC 8489 §6.3 order: at least HeaderSize bytes
// (ErrShort), first two bits zero (ErrNotSTUN), length a multiple of 4
// (ErrBadLength). It reads only the first HeaderSize bytes, so it frames
// messages that follow each other on a stream (RFC 8489 §6.2.2); whether
// b holds the whole message, and the cookie, are left to the caller or to
// Decode. With ErrBadLength it returns the header as read too, so that a
// caller can name the length or judge the cookie first.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, ErrShort
	}
	if b[0]&0xC0 != 0 {
		return Header{}, ErrNotSTUN
	}
	h := Header{
		Type:   MessageType(binary.BigEndian.Uint16(b[0:2])),
		Length: int(binary.BigEndian.Uint16(b[2:4])),
		Cookie: binary.BigEndian.Uint32(b[4:8]),
	}
	if h.Length%4 != 0 {
		return h, ErrBadLength
	}

	return h, nil
}

// Size returns the size of the whole message: header and attributes.
func (h Header) Size() int { return HeaderSize + h.Length }

// Classic reports whether the message lacks the magic cookie, as RFC 3489
// messages do.
func (h Header) Classic() bool { return h.Cookie != MagicCookie }
