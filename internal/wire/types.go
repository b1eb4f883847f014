package wire

import "strconv"

// Sizes and constants of the STUN header (RFC 8489 §5).
const (
	// HeaderSize is the size of the fixed message header.
	HeaderSize = 20
	// MagicCookie is the fixed value in bytes 4 to 8 of every RFC 5389 and
	// RFC 8489 message; RFC 3489 messages have transaction ID bytes there.
	MagicCookie uint32 = 0x2112A442
	// FingerprintXOR is XORed with the CRC-32 to give FINGERPRINT's value.
	FingerprintXOR uint32 = 0x5354554e
	// TransactionIDSize is the size of an RFC 8489 transaction ID.
	TransactionIDSize = 12
	// ClassicTransactionIDSize is the size of an RFC 3489 transaction ID,
	// which takes the place of the magic cookie too.
	ClassicTransactionIDSize = 16
	// AttrHeaderSize is the size of an attribute's type and length.
	AttrHeaderSize = 4
	// FingerprintSize is the size of a whole FINGERPRINT attribute.
	FingerprintSize = AttrHeaderSize + 4
	// MaxAttributes is how many attributes a Message indexes. It covers
	// every message of up to 2068 bytes (2048 bytes of empty attributes).
	MaxAttributes = 512
)

// TransactionID is the 96-bit transaction ID of an RFC 8489 message.
type TransactionID [TransactionIDSize]byte

// Method is a STUN method, a 12-bit number.
type Method uint16

// MethodBinding is the Binding method, the only one STUN itself defines.
const MethodBinding Method = 0x001

// Class is the class of a message: request, indication, success or error
// response.
type Class uint8

// The four message classes.
const (
	ClassRequest    Class = 0
	ClassIndication Class = 1
	ClassSuccess    Class = 2
	ClassError      Class = 3
)

// String returns the class as RFC 8489 words it.
func (c Class) String() string {
	switch c {
	case ClassRequest:
		return "request"
	case ClassIndication:
		return "indication"
	case ClassSuccess:
		return "success response"
	case ClassError:
		return "error response"
	}

	return "class " + strconv.Itoa(int(c))
}

// MessageType is the 14-bit type of a message: its method and class,
// interleaved as in RFC 8489 §5.
type MessageType uint16

// The Binding message types.
const (
	BindingRequest    MessageType = 0x0001
	BindingIndication MessageType = 0x0011
	BindingSuccess    MessageType = 0x0101
	BindingError      MessageType = 0x0111
)

// NewType returns the message type of method m and class c.
func NewType(m Method, c Class) MessageType {
	t := uint16(m)&0x000F | (uint16(m)&0x0070)<<1 | (uint16(m)&0x0F80)<<2
	t |= uint16(c&1)<<4 | uint16(c&2)<<7

	return MessageType(t)
}

// Method returns the method of t.
func (t MessageType) Method() Method {
	return Method(uint16(t)&0x000F | (uint16(t)&0x00E0)>>1 | (uint16(t)&0x3E00)>>2)
}

// Class returns the class of t.
func (t MessageType) Class() Class {
	return Class((t>>4)&1 | (t>>7)&2)
}

// String names t, "Binding success response" for instance.
func (t MessageType) String() string {
	m := "Binding"
	if t.Method() != MethodBinding {
		m = "method 0x" + strconv.FormatUint(uint64(t.Method()), 16)
	}

	return m + " " + t.Class().String()
}

// AttrType is the type of an attribute. Types below 0x8000 are
// comprehension-required, the others comprehension-optional.
type AttrType uint16

// Attribute types of RFC 8489, RFC 3489 (classic STUN), RFC 5780 (NAT
// behaviour discovery) and RFC 8445 (ICE).
const (
	AttrMappedAddress          AttrType = 0x0001
	AttrResponseAddress        AttrType = 0x0002 // RFC 3489
	AttrChangeRequest          AttrType = 0x0003 // RFC 3489, RFC 5780
	AttrSourceAddress          AttrType = 0x0004 // RFC 3489
	AttrChangedAddress         AttrType = 0x0005 // RFC 3489
	AttrUsername               AttrType = 0x0006
	AttrPassword               AttrType = 0x0007 // RFC 3489
	AttrMessageIntegrity       AttrType = 0x0008
	AttrErrorCode              AttrType = 0x0009
	AttrUnknownAttributes      AttrType = 0x000A
	AttrReflectedFrom          AttrType = 0x000B // RFC 3489
	AttrRealm                  AttrType = 0x0014
	AttrNonce                  AttrType = 0x0015
	AttrMessageIntegritySHA256 AttrType = 0x001C
	AttrPasswordAlgorithm      AttrType = 0x001D
	AttrUserhash               AttrType = 0x001E
	AttrXORMappedAddress       AttrType = 0x0020
	AttrPriority               AttrType = 0x0024 // RFC 8445
	AttrUseCandidate           AttrType = 0x0025 // RFC 8445
	AttrPadding                AttrType = 0x0026 // RFC 5780
	AttrResponsePort           AttrType = 0x0027 // RFC 5780
	AttrPasswordAlgorithms     AttrType = 0x8002
	AttrAlternateDomain        AttrType = 0x8003
	// AttrXORMappedAddressDraft is XOR-MAPPED-ADDRESS as drafts of RFC
	// 5389 numbered it; some old servers still send it. It is decoded like
	// AttrXORMappedAddress but is a separate type here.
	AttrXORMappedAddressDraft AttrType = 0x8020
	AttrSoftware              AttrType = 0x8022
	AttrAlternateServer       AttrType = 0x8023
	AttrFingerprint           AttrType = 0x8028
	AttrICEControlled         AttrType = 0x8029 // RFC 8445
	AttrICEControlling        AttrType = 0x802A // RFC 8445
	AttrResponseOrigin        AttrType = 0x802B // RFC 5780
	AttrOtherAddress          AttrType = 0x802C // RFC 5780
)

// Required reports whether t is comprehension-required (0x0000-0x7FFF): a
// server that does not understand it must refuse the request (RFC 8489
// §6.3.1).
func (t AttrType) Required() bool { return t < 0x8000 }

var attrNames = map[AttrType]string{
	AttrMappedAddress:          "MAPPED-ADDRESS",
	AttrResponseAddress:        "RESPONSE-ADDRESS",
	AttrChangeRequest:          "CHANGE-REQUEST",
	AttrSourceAddress:          "SOURCE-ADDRESS",
	AttrChangedAddress:         "CHANGED-ADDRESS",
	AttrUsername:               "USERNAME",
	AttrPassword:               "PASSWORD",
	AttrMessageIntegrity:       "MESSAGE-INTEGRITY",
	AttrErrorCode:              "ERROR-CODE",
	AttrUnknownAttributes:      "UNKNOWN-ATTRIBUTES",
	AttrReflectedFrom:          "REFLECTED-FROM",
	AttrRealm:                  "REALM",
	AttrNonce:                  "NONCE",
	AttrMessageIntegritySHA256: "MESSAGE-INTEGRITY-SHA256",
	AttrPasswordAlgorithm:      "PASSWORD-ALGORITHM",
	AttrUserhash:               "USERHASH",
	AttrXORMappedAddress:       "XOR-MAPPED-ADDRESS",
	AttrPriority:               "PRIORITY",
	AttrUseCandidate:           "USE-CANDIDATE",
	AttrPadding:                "PADDING",
	AttrResponsePort:           "RESPONSE-PORT",
	AttrPasswordAlgorithms:     "PASSWORD-ALGORITHMS",
	AttrAlternateDomain:        "ALTERNATE-DOMAIN",
	AttrXORMappedAddressDraft:  "XOR-MAPPED-ADDRESS (draft)",
	AttrSoftware:               "SOFTWARE",
	AttrAlternateServer:        "ALTERNATE-SERVER",
	AttrFingerprint:            "FINGERPRINT",
	AttrICEControlled:          "ICE-CONTROLLED",
	AttrICEControlling:         "ICE-CONTROLLING",
	AttrResponseOrigin:         "RESPONSE-ORIGIN",
	AttrOtherAddress:           "OTHER-ADDRESS",
}

// String returns the attribute's name, or its number in hexadecimal
// ("0x7f01") when this package does not name it.
func (t AttrType) String() string {
	if s, ok := attrNames[t]; ok {
		return s
	}

	return "0x" + strconv.FormatUint(uint64(t), 16)
}

// ChangeFlags is the value of CHANGE-REQUEST (RFC 5780 §7.2): which of its
// addresses the client asks the server to answer from.
type ChangeFlags uint32

// The CHANGE-REQUEST flags; the other bits are unused.
const (
	ChangeIP   ChangeFlags = 0x4
	ChangePort ChangeFlags = 0x2
)
