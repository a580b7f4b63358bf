/*
 * gen_vectors.c - prints test vectors (JSON) made by the C implementation, so the Python side
 * (robot_tracker.protocol) is tested against the same bytes. `make test` checks that the committed
 * tests/vectors.json equals this program's output.
 */
#include <stdio.h>
#include <string.h>

#include "../core/pt_app.h"

static int first = 1;

static void emit(const char *name, uint8_t type, uint8_t seq, const uint8_t *pl, uint8_t len)
{
    uint8_t buf[PT_MAX_FRAME];
    size_t n = pt_encode(buf, sizeof buf, type, seq, pl, len);
    printf("%s  {\"name\": \"%s\", \"type\": %u, \"seq\": %u, \"payload\": \"", first ? "" : ",\n", name, type, seq);
    for (uint8_t i = 0; i < len; i++)
        printf("%02x", pl[i]);
    printf("\", \"frame\": \"");
    for (size_t i = 0; i < n; i++)
        printf("%02x", buf[i]);
    printf("\"}");
    first = 0;
}

int main(void)
{
    uint8_t pl[PT_MAX_PAYLOAD];
    printf("[\n");
    emit("ping", PT_CMD_PING, 0, NULL, 0);
    pt_put_i16(&pl[0], 4500);
    pt_put_i16(&pl[2], -1234);
    pt_put_u16(&pl[4], 0);
    emit("set_target", PT_CMD_SET_TARGET, 17, pl, 6);
    pt_put_i16(&pl[0], -9000);
    pt_put_i16(&pl[2], 9000);
    pt_put_u16(&pl[4], 12000);
    emit("set_target_speed", PT_CMD_SET_TARGET, 255, pl, 6);
    pt_put_i16(&pl[0], -6000);
    pt_put_i16(&pl[2], 6000);
    pt_put_i16(&pl[4], -3000);
    pt_put_i16(&pl[6], 4500);
    emit("set_limits", PT_CMD_SET_LIMITS, 3, pl, 8);
    pt_put_u16(&pl[0], 30000);
    pt_put_u16(&pl[2], 1000);
    emit("set_speed", PT_CMD_SET_SPEED, 4, pl, 4);
    emit("get_status", PT_CMD_GET_STATUS, 5, NULL, 0);
    pl[0] = PT_CMD_SET_TARGET;
    emit("ack", PT_RSP_ACK, 17, pl, 1);
    pl[0] = PT_CMD_SET_TARGET;
    pl[1] = PT_E_RANGE;
    emit("nack_range", PT_RSP_NACK, 18, pl, 2);
    /* a status reply from a real app state */
    pt_app_t app;
    pt_app_init(&app, 0, PT_RESET_WDRF);
    pt_app_set_target(&app, 1500, -700, 0, 0);
    pt_app_tick(&app, 30);
    app.crc_errors = 3;
    app.frame_errors = 258;
    app.rx_overflows = 1;
    pt_app_status(&app, 987654, pl);
    emit("status", PT_RSP_STATUS, 5, pl, PT_STATUS_LEN);
    printf("\n]\n");
    return 0;
}
