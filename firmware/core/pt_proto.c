/* pt_proto.c - framing and CRC; see pt_proto.h and ../PROTOCOL.md. */
#include "pt_proto.h"

#include <string.h>

enum { S_HUNT = 0, S_LEN, S_TYPE, S_SEQ, S_PAYLOAD, S_CRC_LO, S_CRC_HI };

uint16_t pt_crc16(const uint8_t *data, size_t len, uint16_t crc)
{
    /* Bitwise on purpose: 256 B of table would be 12% of the Uno's RAM (or needs PROGMEM). */
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)((uint16_t)data[i] << 8);
        for (uint8_t b = 0; b < 8; b++)
            crc = (crc & 0x8000u) ? (uint16_t)((crc << 1) ^ 0x1021u) : (uint16_t)(crc << 1);
    }
    return crc;
}

size_t pt_encode(uint8_t *out, size_t cap, uint8_t type, uint8_t seq, const uint8_t *payload,
                 uint8_t len)
{
    if (len > PT_MAX_PAYLOAD || cap < (size_t)len + PT_OVERHEAD || (len && !payload))
        return 0;
    out[0] = PT_START;
    out[1] = len;
    out[2] = type;
    out[3] = seq;
    if (len)
        memcpy(&out[4], payload, len);
    uint16_t crc = pt_crc16(&out[1], (size_t)len + 3u, 0xFFFFu);
    out[4 + len] = (uint8_t)crc;
    out[5 + len] = (uint8_t)(crc >> 8);
    return (size_t)len + PT_OVERHEAD;
}

void pt_parser_reset(pt_parser_t *p)
{
    memset(p, 0, sizeof(*p));
}

int pt_parser_busy(const pt_parser_t *p)
{
    return p->state != S_HUNT;
}

pt_parse_result_t pt_parser_feed(pt_parser_t *p, uint8_t byte, pt_frame_t *out)
{
    pt_frame_t *f = &p->frame;
    switch (p->state) {
    case S_HUNT:
        if (byte == PT_START)
            p->state = S_LEN;
        return PT_PARSE_NONE;
    case S_LEN:
        if (byte > PT_MAX_PAYLOAD) {
            p->state = S_HUNT;
            return PT_PARSE_ERR_LENGTH;
        }
        f->len = byte;
        p->state = S_TYPE;
        return PT_PARSE_NONE;
    case S_TYPE:
        f->type = byte;
        p->state = S_SEQ;
        return PT_PARSE_NONE;
    case S_SEQ:
        f->seq = byte;
        p->idx = 0;
        p->state = f->len ? S_PAYLOAD : S_CRC_LO;
        return PT_PARSE_NONE;
    case S_PAYLOAD:
        f->payload[p->idx++] = byte;
        if (p->idx >= f->len)
            p->state = S_CRC_LO;
        return PT_PARSE_NONE;
    case S_CRC_LO:
        p->crc_lo = byte;
        p->state = S_CRC_HI;
        return PT_PARSE_NONE;
    case S_CRC_HI: {
        uint8_t hdr[3] = {f->len, f->type, f->seq};
        uint16_t crc = pt_crc16(hdr, 3, 0xFFFFu);
        crc = pt_crc16(f->payload, f->len, crc);
        uint16_t rx = (uint16_t)(p->crc_lo | ((uint16_t)byte << 8));
        p->state = S_HUNT;
        if (out)
            *out = *f;
        return crc == rx ? PT_PARSE_FRAME : PT_PARSE_ERR_CRC;
    }
    default:
        p->state = S_HUNT;
        return PT_PARSE_NONE;
    }
}
