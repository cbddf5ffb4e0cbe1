/* protocol_gen.h -- GENERATED from firmware_bridge/spec.py; do not edit.
 * Regenerate: python -m neuroplast.firmware_bridge.gen_header
 * Byte-level specification: firmware_bridge/PROTOCOL.md */
#ifndef NP_PROTOCOL_GEN_H
#define NP_PROTOCOL_GEN_H

/* constants */
#define NP_PROTOCOL_VERSION   1  /* protocol version in every header */
#define NP_HEADER_SIZE        7  /* bytes in the fixed header */
#define NP_CRC_SIZE           4  /* bytes of CRC-32 after the payload */
#define NP_MAX_PAYLOAD        2048  /* largest payload in one frame */
#define NP_MAX_FRAME          2059  /* largest decoded frame (header+payload+crc) */
#define NP_MAX_ENCODED_FRAME  2069  /* largest COBS-encoded frame, no delimiter */
#define NP_IMAGE_VERSION      2  /* model image format version */
#define NP_MAX_LAYERS         32  /* layers per model image */
#define NP_MAX_DELAY_DEPTH    4096  /* deepest delay line (steps) */
#define NP_MAX_LAYER_SIZE     1048576  /* elements of one layer's output */
#define NP_LEARN_STATE_LAYER  255  /* GET/SET_STATE layer id of the learning state */
#define NP_LAYER_KIND_MAX     14  /* highest layer kind code */
#define NP_FW_VERSION_MAJOR   0  /* reference firmware version */
#define NP_FW_VERSION_MINOR   3  /* reference firmware version */
#define NP_FW_VERSION_PATCH   0  /* reference firmware version */
#define NP_STATS_COUNT        16  /* u32 counters in a STATS reply */

/* message types (header byte 1) */
#define NP_MSG_HELLO         0x01  /* open a session: reset duplicate detection; reply CAPS */
#define NP_MSG_CAPS          0x02  /* query capabilities without resetting the session */
#define NP_MSG_LOAD_BUNDLE   0x03  /* one chunk of a model image (offset, total, crcs, data) */
#define NP_MSG_INFER         0x04  /* run n steps from reset state, reply all outputs */
#define NP_MSG_STREAM        0x05  /* run n steps continuing the state (dense or event input) */
#define NP_MSG_LEARN_ENABLE  0x06  /* configure on-device integer STDP for a layer; start, stop or resume it */
#define NP_MSG_GET_STATE     0x07  /* read one chunk of a layer's (learned) weights, or of the learning state */
#define NP_MSG_SET_STATE     0x08  /* write one chunk of a layer's weights, or of the learning state */
#define NP_MSG_STATS         0x09  /* read the link and runtime counters */
#define NP_MSG_RESET         0x0A  /* reset neuron state, unload the model, or clear counters */
#define NP_MSG_LOG           0x0B  /* unsolicited text from the board (level, utf-8) */
#define NP_MSG_PING          0x0C  /* echo the payload back (link test, throughput) */
#define NP_MSG_ACK           0x7E  /* success reply: request type, then the result */
#define NP_MSG_NACK          0x7F  /* error reply: request type, error code, utf-8 detail */

/* error codes (NACK payload byte 1) */
#define NP_ERR_OK             0  /* no error */
#define NP_ERR_CRC            1  /* frame CRC mismatch */
#define NP_ERR_FRAMING        2  /* COBS decoding failed or frame too short/long */
#define NP_ERR_VERSION        3  /* unsupported protocol version */
#define NP_ERR_UNKNOWN_TYPE   4  /* unknown message type */
#define NP_ERR_BAD_LENGTH     5  /* payload length does not match the message */
#define NP_ERR_NO_MODEL       6  /* no model is loaded */
#define NP_ERR_MODEL_INVALID  7  /* model image failed validation */
#define NP_ERR_TOO_LARGE      8  /* object or reply exceeds the board's limits */
#define NP_ERR_CHUNK_ORDER    9  /* chunk offset/total does not continue the transfer */
#define NP_ERR_OBJECT_CRC     10  /* whole-object CRC mismatch after the last chunk */
#define NP_ERR_BAD_ARG        11  /* an argument is out of range */
#define NP_ERR_UNSUPPORTED    12  /* operation or layer kind not supported by this firmware */
#define NP_ERR_INTERNAL       13  /* internal firmware error */

/* header flags (header byte 2) */
#define NP_FLAG_RETRANSMIT   0x01  /* host: this frame repeats an earlier one with the same seq */
#define NP_FLAG_UNSOLICITED  0x02  /* board: not a reply (LOG) */
#define NP_FLAG_EVENTS       0x04  /* STREAM/INFER: input is an event list, not dense steps */
#define NP_FLAG_RESET_STATE  0x08  /* STREAM: reset neuron state before the first step */

/* model image layer kinds */
#define NP_LAYER_LINEAR        1  /* int8 fully connected + requantize */
#define NP_LAYER_CONV          2  /* int8 2-D convolution over [C, H, W] (groups, stride, pad, dilation); Conv1d is H = 1 */
#define NP_LAYER_LIF           3  /* leaky integrate-and-fire (IF: no leak), int64 membrane, spikes out */
#define NP_LAYER_LI            4  /* leaky integrator readout, int64 membrane, int32 out */
#define NP_LAYER_DELAY         5  /* per-element integer delay (ring buffer) */
#define NP_LAYER_DELAY_LINEAR  6  /* fully connected with per-synapse integer delays */
#define NP_LAYER_CUBALIF       7  /* current-based LIF: synaptic current then membrane, spikes out */
#define NP_LAYER_MAXPOOL       8  /* 2-D max pooling over [C, H, W] */
#define NP_LAYER_AVGPOOL       9  /* 2-D average pooling, padding excluded, rounded half away from zero */
#define NP_LAYER_SUMPOOL       10  /* 2-D sum pooling, int32 out */
#define NP_LAYER_ADD           11  /* element-wise sum of two sources, LiteRT's ADD requantization (the runtime's) */
#define NP_LAYER_RELU          12  /* max(x, zero point) */
#define NP_LAYER_SCALE         13  /* y = requantize(sign * (x - zp_in)), broadcast per tensor/channel/element */
#define NP_LAYER_THRESHOLD     14  /* spike where x > threshold (per tensor/channel/element) */

/* LEARN_ENABLE modes (payload byte 0) */
#define NP_LEARN_OFF        0  /* stop learning; weights, traces and generator are kept */
#define NP_LEARN_START      1  /* configure (zero traces, seed the generator) and learn */
#define NP_LEARN_CONFIGURE  2  /* configure (zero traces, seed the generator), learning stays off */
#define NP_LEARN_RESUME     3  /* learn with the current configuration, traces and generator */

/* STATS reply field indices */
#define NP_STAT_RX_BYTES           0  /* bytes read from the link */
#define NP_STAT_RX_FRAMES          1  /* frames that decoded with a good CRC */
#define NP_STAT_RX_CRC_ERRORS      2  /* frames dropped for a CRC mismatch */
#define NP_STAT_RX_FRAMING_ERRORS  3  /* frames dropped for bad COBS or length */
#define NP_STAT_RX_OVERFLOWS       4  /* frames dropped for exceeding MAX_ENCODED_FRAME */
#define NP_STAT_RX_DUPLICATES      5  /* requests answered from the reply cache (not re-executed) */
#define NP_STAT_TX_FRAMES          6  /* frames written, including resent replies and logs */
#define NP_STAT_EXECUTED           7  /* requests executed (each at most once) */
#define NP_STAT_NACKS              8  /* error replies sent */
#define NP_STAT_INFER_STEPS        9  /* time steps run by INFER and STREAM */
#define NP_STAT_LEARN_UPDATES      10  /* synapse weight changes made by on-device learning */
#define NP_STAT_MODEL_LOADS        11  /* model images accepted */
#define NP_STAT_PINGS              12  /* PING requests executed */
#define NP_STAT_UPTIME_MS          13  /* milliseconds since the board started */
#define NP_STAT_ARENA_USED         14  /* bytes of the model arena in use (model, state, learning traces) */
#define NP_STAT_STEP_CYCLES        15  /* cycles spent in model steps (the port's counter; 0 = none) */

#define NP_IMAGE_MAGIC "NPMI"

#endif /* NP_PROTOCOL_GEN_H */
