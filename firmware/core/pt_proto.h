/*
 * pt_proto.h - framing and CRC of the pan/tilt serial protocol (see ../PROTOCOL.md).
 *
 * Plain C99, no AVR headers: the same file is compiled for the ATmega328P, for the host unit
 * tests/fuzzer (with sanitizers) and for the micro-ROS sketch, so the host tests cover the code
 * that runs on the board.
 */
#ifndef PT_PROTO_H
#define PT_PROTO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PT_START 0xA5u            /* first byte of every frame */
#define PT_MAX_PAYLOAD 32u        /* largest payload accepted; longer LEN is a framing error */
#define PT_OVERHEAD 6u            /* START LEN TYPE SEQ ... CRC_L CRC_H */
#define PT_MAX_FRAME (PT_MAX_PAYLOAD + PT_OVERHEAD)

/* Message types. Commands are < 0x80, replies have bit 7 set. */
enum pt_type {
    PT_CMD_PING = 0x01,
    PT_CMD_SET_TARGET = 0x02,
    PT_CMD_SET_LIMITS = 0x03,
    PT_CMD_SET_SPEED = 0x04,
    PT_CMD_GET_STATUS = 0x05,
    PT_CMD_DEBUG_HANG = 0x7E, /* only in test builds (PT_ENABLE_DEBUG_CMDS) */
    PT_RSP_ACK = 0x80,
    PT_RSP_NACK = 0x81,
    PT_RSP_STATUS = 0x82
};

/* NACK error codes. */
enum pt_error {
    PT_E_NONE = 0,
    PT_E_CRC = 1,         /* CRC mismatch (frame counted in crc_errors) */
    PT_E_LENGTH = 2,      /* payload length wrong for the command */
    PT_E_UNKNOWN_CMD = 3, /* type not known (or debug command in a release build) */
    PT_E_RANGE = 4,       /* target outside the absolute +-90 deg servo range: refused */
    PT_E_BAD_ARG = 5      /* inconsistent argument (min >= max, speed/timeout out of range) */
};

/* One decoded frame. */
typedef struct {
    uint8_t type;
    uint8_t seq;
    uint8_t len;
    uint8_t payload[PT_MAX_PAYLOAD];
} pt_frame_t;

/* Result of feeding one byte to the parser. */
typedef enum {
    PT_PARSE_NONE = 0,      /* need more bytes (or byte discarded while hunting for START) */
    PT_PARSE_FRAME = 1,     /* *out holds a frame with a valid CRC */
    PT_PARSE_ERR_CRC = 2,   /* a whole frame arrived with a bad CRC; *out holds its (untrusted) header */
    PT_PARSE_ERR_LENGTH = 3 /* LEN > PT_MAX_PAYLOAD; parser resynchronises on the next START */
} pt_parse_result_t;

/* Byte-wise parser state; zero-initialise or call pt_parser_reset(). */
typedef struct {
    uint8_t state;
    uint8_t idx;
    uint8_t crc_lo;
    pt_frame_t frame;
} pt_parser_t;

/* CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no xorout); pass 0xFFFF to start. */
uint16_t pt_crc16(const uint8_t *data, size_t len, uint16_t crc);

/* Encode one frame into out; returns the frame length or 0 when cap is too small / len too big. */
size_t pt_encode(uint8_t *out, size_t cap, uint8_t type, uint8_t seq, const uint8_t *payload,
                 uint8_t len);

void pt_parser_reset(pt_parser_t *p);
/* True while the parser is inside a frame (used for the inter-byte timeout). */
int pt_parser_busy(const pt_parser_t *p);
pt_parse_result_t pt_parser_feed(pt_parser_t *p, uint8_t byte, pt_frame_t *out);

/* Little-endian helpers (the protocol is little-endian on every platform). */
static inline void pt_put_u16(uint8_t *b, uint16_t v) { b[0] = (uint8_t)v; b[1] = (uint8_t)(v >> 8); }
static inline void pt_put_i16(uint8_t *b, int16_t v) { pt_put_u16(b, (uint16_t)v); }
static inline void pt_put_u32(uint8_t *b, uint32_t v)
{
    b[0] = (uint8_t)v; b[1] = (uint8_t)(v >> 8); b[2] = (uint8_t)(v >> 16); b[3] = (uint8_t)(v >> 24);
}
static inline uint16_t pt_get_u16(const uint8_t *b) { return (uint16_t)(b[0] | ((uint16_t)b[1] << 8)); }
static inline int16_t pt_get_i16(const uint8_t *b) { return (int16_t)pt_get_u16(b); }

#ifdef __cplusplus
}
#endif
#endif
