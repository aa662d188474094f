#!/usr/bin/python3
# Writes the HTTP/2 fuzz seeds (client byte streams: the preface, then frames) into this folder.
# Run with Debian's python3 and python3-h2 (hyperframe, hpack): /usr/bin/python3 make_corpus.py
from hpack import Encoder
from hyperframe.frame import (ContinuationFrame, DataFrame, HeadersFrame, PingFrame, PriorityFrame,
                              RstStreamFrame, SettingsFrame, WindowUpdateFrame, GoAwayFrame)

PREFACE = b'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'


def head(enc, sid, path, method='GET', extra=(), end_stream=True):
    f = HeadersFrame(sid, enc.encode([(':method', method), (':path', path), (':scheme', 'http'),
                                      (':authority', 'x')] + list(extra)))
    f.flags.add('END_HEADERS')
    if end_stream:
        f.flags.add('END_STREAM')
    return f


def seed(name, frames):
    with open(name + '.h2', 'wb') as out:
        out.write(PREFACE + SettingsFrame(0).serialize() + b''.join(f.serialize() for f in frames))


e = Encoder()
seed('get', [head(e, 1, '/'), head(e, 3, '/a?b=c', extra=[('accept-encoding', 'gzip, br')])])
e = Encoder()
body = DataFrame(1, b'x' * 300)
body.flags.add('END_STREAM')
seed('post', [head(e, 1, '/up', 'POST', [('content-length', '300')], end_stream=False), body])
e = Encoder()
block = e.encode([(':method', 'GET'), (':path', '/c'), (':scheme', 'http'), (':authority', 'x'),
                  ('cookie', 'a=' + 'v' * 200)])
h = HeadersFrame(1, block[:20])
h.flags.add('END_STREAM')
c = ContinuationFrame(1, block[20:])
c.flags.add('END_HEADERS')
seed('continuation', [h, c])
e = Encoder()
ping = PingFrame(0, b'12345678')
wu = WindowUpdateFrame(0, 65536)
seed('control', [ping, wu, SettingsFrame(0, settings={4: 1 << 20, 5: 32768}), PriorityFrame(3, depends_on=1),
                 head(e, 1, '/p'), RstStreamFrame(1, 8), head(e, 3, '/q')])
e = Encoder()
data = DataFrame(1, b'chunk', pad_length=7)
trailer = HeadersFrame(1, e.encode([('x-trailer', 'yes')]))
first = head(e, 1, '/t', 'POST', end_stream=False)
trailer.flags.add('END_HEADERS')
trailer.flags.add('END_STREAM')
data.flags.add('PADDED')
seed('padded-trailers', [first, data, trailer])
seed('goaway', [GoAwayFrame(0, 0, 0)])
