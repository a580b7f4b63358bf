/*
 * main.c - ATmega328P (Arduino Uno/Nano, 16 MHz) hardware layer of the pan/tilt board.
 *
 * Bare avr-libc, no Arduino core: the core's Servo library is not available here and its
 * millis()/Serial would add ~2 KB for nothing. Everything protocol- or safety-related lives in
 * ../core (plain C, host-tested); this file only wires it to:
 *   - Timer1 in fast PWM mode 14 (TOP = ICR1 = 39999, clk/8 -> 0.5 us ticks, 20 ms frame) driving
 *     OC1A = PB1 = D9 (pan) and OC1B = PB2 = D10 (tilt) in hardware: no ISR jitter on the pulses,
 *     and OCR1x are double-buffered so a new width starts cleanly at the next frame.
 *     The Timer1 overflow interrupt (every 20 ms) also provides the millisecond clock.
 *   - USART0 at 115200 baud (U2X), RX by interrupt into a ring buffer, TX polled (replies are short).
 *   - the hardware watchdog (500 ms), fed only from the main loop, so a hung loop resets the MCU.
 */
#include <avr/interrupt.h>
#include <avr/io.h>
#include <avr/wdt.h>
#include <stdint.h>
#include <util/atomic.h>

#include "../core/pt_app.h"

#ifndef F_CPU
#error "F_CPU must be defined"
#endif
#define BAUD 115200UL
#define RX_BUF 64u /* power of two */
#define SERVO_TOP 39999u /* 20 ms frame in 0.5 us ticks, minus one */

uint8_t mcusr_at_boot __attribute__((section(".noinit")));

/* Read and clear the reset cause, and stop a watchdog that survived the reset before it bites. */
void early_init(void) __attribute__((naked, used, section(".init3")));
void early_init(void)
{
    mcusr_at_boot = MCUSR;
    MCUSR = 0;
    wdt_disable();
}

static volatile uint8_t rx_buf[RX_BUF];
static volatile uint8_t rx_head, rx_tail;
static volatile uint8_t rx_overflow;
static volatile uint32_t frames20; /* Timer1 overflows (20 ms frames) since boot */

ISR(USART_RX_vect)
{
    uint8_t b = UDR0;
    uint8_t next = (uint8_t)((rx_head + 1u) & (RX_BUF - 1u));
    if (next == rx_tail) {
        rx_overflow++;
        return;
    }
    rx_buf[rx_head] = b;
    rx_head = next;
}

ISR(TIMER1_OVF_vect)
{
    frames20++;
}

static uint32_t millis(void)
{
    uint32_t f;
    uint16_t t;
    ATOMIC_BLOCK(ATOMIC_RESTORESTATE)
    {
        f = frames20;
        t = TCNT1;
        if ((TIFR1 & _BV(TOV1)) && t < SERVO_TOP / 2u)
            f++; /* the overflow happened but its ISR has not run yet */
    }
    return f * 20u + t / 2000u;
}

static void uart_init(void)
{
    UCSR0A = _BV(U2X0);
    UBRR0 = (uint16_t)((F_CPU / (8UL * BAUD)) - 1UL + 0UL); /* 16 at 16 MHz: 117647 baud, -2.1% ok */
    UCSR0C = _BV(UCSZ01) | _BV(UCSZ00); /* 8N1 */
    UCSR0B = _BV(RXEN0) | _BV(TXEN0) | _BV(RXCIE0);
}

static void uart_write(const uint8_t *d, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        while (!(UCSR0A & _BV(UDRE0)))
            ;
        UDR0 = d[i];
    }
}

static void uart_flush(void)
{
    while (!(UCSR0A & _BV(UDRE0)))
        ;
    UCSR0A |= _BV(TXC0);
}

static void servo_write(uint16_t pan_us, uint16_t tilt_us)
{
    /* OCR1x are double-buffered in PWM mode: a new width starts at the next 20 ms frame. */
    ATOMIC_BLOCK(ATOMIC_RESTORESTATE)
    {
        OCR1A = (uint16_t)(pan_us * 2u - 1u); /* high for OCR1A + 1 ticks */
        OCR1B = (uint16_t)(tilt_us * 2u - 1u);
    }
}

static void servo_init(uint16_t pan_us, uint16_t tilt_us)
{
    servo_write(pan_us, tilt_us);
    ICR1 = SERVO_TOP;
    TCCR1A = _BV(COM1A1) | _BV(COM1B1) | _BV(WGM11); /* non-inverting, mode 14 */
    TCCR1B = _BV(WGM13) | _BV(WGM12) | _BV(CS11);   /* clk/8 */
    TIMSK1 = _BV(TOIE1);
    DDRB |= _BV(PB1) | _BV(PB2);
}

static pt_app_t app;

int main(void)
{
    pt_app_init(&app, 0, mcusr_at_boot);
    servo_init(pt_app_pulse_us(&app, PT_AXIS_PAN), pt_app_pulse_us(&app, PT_AXIS_TILT));
    uart_init();
    wdt_enable(WDTO_500MS);
    sei();

    uint8_t reply[PT_MAX_FRAME];
    for (;;) {
        wdt_reset();
        uint32_t now = millis();
        while (rx_tail != rx_head) {
            uint8_t b = rx_buf[rx_tail];
            rx_tail = (uint8_t)((rx_tail + 1u) & (RX_BUF - 1u));
            size_t n = pt_app_rx_byte(&app, b, now, reply, sizeof reply);
            if (n)
                uart_write(reply, n);
            if (app.hang_requested) {
                /* DEBUG_HANG (test builds only): stop feeding the watchdog, as a real hang would. */
                uart_flush();
                for (;;)
                    ;
            }
        }
        if (rx_overflow) {
            ATOMIC_BLOCK(ATOMIC_RESTORESTATE)
            {
                app.rx_overflows = (uint16_t)(app.rx_overflows + rx_overflow);
                rx_overflow = 0;
            }
        }
        pt_app_tick(&app, now);
        servo_write(pt_app_pulse_us(&app, PT_AXIS_PAN), pt_app_pulse_us(&app, PT_AXIS_TILT));
    }
}
