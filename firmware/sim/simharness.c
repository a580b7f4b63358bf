/*
 * simharness.c - hardware-in-the-loop stand-in for the pan/tilt board.
 *
 * Runs the real firmware .elf on libsimavr (ATmega328P, 16 MHz) and
 *   - bridges USART0 to a pseudo-terminal: the slave path is printed as "PTY <path>" on stdout
 *     (and, with --link PATH, a symlink PATH -> slave is (re)created, like a udev by-id name, so a
 *     restarted simulator shows up under the same name);
 *   - timestamps the servo pins PB1 (D9, pan) and PB2 (D10, tilt) with the simulated cycle counter
 *     and prints "PULSE <ch> <width_us> <sim_ms>" whenever a channel's pulse width changes
 *     (ch 0 = pan, 1 = tilt; first pulse always printed);
 *   - holds the CPU in reset until the host sends its first byte ("START" is printed then), so a
 *     host that opens the pty late loses nothing;
 *   - paces the simulation to wall-clock time so firmware timeouts (failsafe, watchdog) mean the
 *     same to the host as on a real board.
 * simavr's own CLI cannot do this: it has no UART input and no pin timing output.
 *
 * Usage: simharness [--link PATH] firmware.elf
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "avr_ioport.h"
#include "avr_timer.h"
#include "avr_uart.h"
#include "sim_avr.h"
#include "sim_elf.h"
#include "sim_irq.h"

#define FREQ 16000000u

static int master_fd = -1;
static const char *link_path;
static volatile sig_atomic_t stop_requested;
static avr_t *avr;

/* UART flow control: simavr raises XOFF when its 64-byte RX fifo is full. */
static volatile int uart_xoff;

typedef struct {
    avr_cycle_count_t rise;
    int high;
    double last_printed;
} pin_t;
static pin_t pins[2] = {{0, 0, -1.0}, {0, 0, -1.0}};

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void uart_out_hook(struct avr_irq_t *irq, uint32_t value, void *param)
{
    (void)irq;
    (void)param;
    uint8_t b = (uint8_t)value;
    /* The pty buffer (4 KB) is far larger than anything the firmware sends between host reads;
     * if the host is gone the byte is dropped, as on a real unplugged cable. */
    if (write(master_fd, &b, 1) < 0 && errno != EAGAIN && errno != EIO)
        perror("simharness: write pty");
}

static void xon_hook(struct avr_irq_t *irq, uint32_t value, void *param)
{
    (void)irq; (void)value; (void)param;
    uart_xoff = 0;
}

static void xoff_hook(struct avr_irq_t *irq, uint32_t value, void *param)
{
    (void)irq; (void)value; (void)param;
    uart_xoff = 1;
}

static void pin_hook(struct avr_irq_t *irq, uint32_t value, void *param)
{
    (void)irq;
    int ch = (int)(intptr_t)param;
    pin_t *p = &pins[ch];
    if (value && !p->high) {
        p->rise = avr->cycle;
        p->high = 1;
    } else if (!value && p->high) {
        p->high = 0;
        double us = (double)(avr->cycle - p->rise) * 1e6 / FREQ;
        double d = us - p->last_printed;
        if (p->last_printed < 0 || d >= 0.5 || d <= -0.5) {
            p->last_printed = us;
            printf("PULSE %d %.1f %.1f\n", ch, us, (double)avr->cycle * 1e3 / FREQ);
            fflush(stdout);
        }
    }
}

/*
 * simavr 1.6 computes a timer's compare-match times only when the timer is (re)configured, so in
 * fast PWM mode a new OCR1A/OCR1B value never reaches the pin, while real silicon latches it at the
 * next BOTTOM (double buffering). Wrap the OCR1xL write handlers and refresh the compare period
 * after each write; simavr re-arms the compare timers from it at the next overflow, which is
 * exactly the hardware's double-buffered behaviour.
 */
typedef struct {
    avr_io_write_t orig;
    void *param;
    int comp;
} ocr_hook_t;
static ocr_hook_t ocr_hooks[2];
static avr_timer_t *timer1;

static avr_timer_t *find_timer1(void *param)
{
    avr_timer_t *t = (avr_timer_t *)param;
    if (t->name == '1' && t->comp[0].r_ocr == 0x88)
        return t;
    avr_timer_comp_t *c = (avr_timer_comp_t *)param;
    if ((c->r_ocr == 0x88 || c->r_ocr == 0x8A) && c->timer && c->timer->name == '1')
        return c->timer;
    return NULL;
}

static void ocr_write_hook(struct avr_t *a, avr_io_addr_t addr, uint8_t v, void *param)
{
    ocr_hook_t *h = (ocr_hook_t *)param;
    h->orig(a, addr, v, h->param);
    if (!timer1)
        timer1 = find_timer1(h->param);
    if (!timer1 || !timer1->tov_cycles || (timer1->mode.kind != avr_timer_wgm_fast_pwm && timer1->mode.kind != avr_timer_wgm_pwm))
        return;
    avr_timer_comp_t *c = &timer1->comp[h->comp];
    uint32_t ocr = a->data[c->r_ocr] | ((uint32_t)a->data[c->r_ocrh] << 8);
    if (ocr && ocr <= timer1->tov_top)
        c->comp_cycles = (uint64_t)(ocr + 1u) * timer1->tov_cycles / ((uint64_t)timer1->tov_top + 1u);
}

static void install_ocr_hooks(void)
{
    const avr_io_addr_t addrs[2] = {0x88, 0x8A}; /* OCR1AL, OCR1BL */
    for (int i = 0; i < 2; i++) {
        int io = AVR_DATA_TO_IO(addrs[i]);
        ocr_hooks[i].orig = avr->io[io].w.c;
        ocr_hooks[i].param = avr->io[io].w.param;
        ocr_hooks[i].comp = i;
        if (!ocr_hooks[i].orig) {
            fprintf(stderr, "simharness: no OCR1x write handler in this simavr\n");
            exit(2);
        }
        avr->io[io].w.c = ocr_write_hook;
        avr->io[io].w.param = &ocr_hooks[i];
    }
}

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void make_link(const char *slave)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp%d", link_path, (int)getpid());
    unlink(tmp);
    if (symlink(slave, tmp) != 0 || rename(tmp, link_path) != 0) {
        perror("simharness: --link");
        exit(2);
    }
}

/* Read up to n bytes from the pty master without blocking; 0 when none. */
static ssize_t pty_read(uint8_t *buf, size_t n, int timeout_ms)
{
    struct pollfd pfd = {master_fd, POLLIN, 0};
    if (poll(&pfd, 1, timeout_ms) <= 0 || !(pfd.revents & POLLIN))
        return 0;
    ssize_t r = read(master_fd, buf, n);
    return r > 0 ? r : 0;
}

int main(int argc, char **argv)
{
    const char *elf = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--link") && i + 1 < argc)
            link_path = argv[++i];
        else
            elf = argv[i];
    }
    if (!elf) {
        fprintf(stderr, "usage: %s [--link PATH] firmware.elf\n", argv[0]);
        return 2;
    }
    prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive the test that started us */
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);

    elf_firmware_t fw;
    memset(&fw, 0, sizeof fw);
    if (elf_read_firmware(elf, &fw) != 0) {
        fprintf(stderr, "simharness: cannot read %s\n", elf);
        return 2;
    }
    strcpy(fw.mmcu, "atmega328p");
    fw.frequency = FREQ;
    avr = avr_make_mcu_by_name(fw.mmcu);
    if (!avr) {
        fprintf(stderr, "simharness: simavr lacks atmega328p\n");
        return 2;
    }
    avr_init(avr);
    avr_load_firmware(avr, &fw);
    avr->frequency = FREQ;
    avr->log = LOG_ERROR;
    install_ocr_hooks();

    /* pty: keep the slave open ourselves so the master never sees a hang-up when the host closes. */
    int slave_fd;
    char slave_name[256];
    if (openpty(&master_fd, &slave_fd, slave_name, NULL, NULL) != 0) {
        perror("simharness: openpty");
        return 2;
    }
    struct termios tio;
    tcgetattr(slave_fd, &tio);
    cfmakeraw(&tio);
    tcsetattr(slave_fd, TCSANOW, &tio);
    fcntl(master_fd, F_SETFL, fcntl(master_fd, F_GETFL) | O_NONBLOCK);
    if (link_path)
        make_link(slave_name);

    uint32_t flags = 0;
    avr_ioctl(avr, AVR_IOCTL_UART_GET_FLAGS('0'), &flags);
    flags &= ~AVR_UART_FLAG_STDIO;
    avr_ioctl(avr, AVR_IOCTL_UART_SET_FLAGS('0'), &flags);
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUTPUT), uart_out_hook, NULL);
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XON), xon_hook, NULL);
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XOFF), xoff_hook, NULL);
    avr_irq_t *uart_in = avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_INPUT);
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_IOPORT_GETIRQ('B'), 1), pin_hook, (void *)(intptr_t)0);
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_IOPORT_GETIRQ('B'), 2), pin_hook, (void *)(intptr_t)1);

    printf("PTY %s\n", slave_name);
    fflush(stdout);

    /* Hold the CPU until the host's first byte. */
    uint8_t pend[256];
    size_t pend_n = 0, pend_i = 0;
    while (!stop_requested && pend_n == 0)
        pend_n = (size_t)pty_read(pend, sizeof pend, 100);
    printf("START\n");
    fflush(stdout);

    const avr_cycle_count_t slice = FREQ / 2000u; /* 0.5 ms of simulated time */
    double wall0 = wall_now();
    avr_cycle_count_t cyc0 = avr->cycle;
    avr_cycle_count_t next_io = avr->cycle;
    while (!stop_requested) {
        int st = avr_run(avr);
        if (st == cpu_Done || st == cpu_Crashed) {
            fprintf(stderr, "simharness: CPU stopped (state %d)\n", st);
            break;
        }
        if (avr->cycle < next_io)
            continue;
        next_io = avr->cycle + slice;
        /* Feed received bytes while the UART fifo accepts them. */
        if (pend_i >= pend_n) {
            pend_i = 0;
            pend_n = (size_t)pty_read(pend, sizeof pend, 0);
        }
        /* Bytes sent before the firmware enabled its receiver would be lost: keep them until then. */
        while (pend_i < pend_n && !uart_xoff && (avr->data[0xC1] & 0x10) /* UCSR0B.RXEN0 */)
            avr_raise_irq(uart_in, pend[pend_i++]);
        /* Pace to real time. */
        double sim_s = (double)(avr->cycle - cyc0) / FREQ;
        double ahead = sim_s - (wall_now() - wall0);
        if (ahead > 0.001) {
            struct timespec ts = {0, (long)(ahead * 1e9)};
            nanosleep(&ts, NULL);
        }
    }
    if (link_path)
        unlink(link_path);
    return 0;
}
