#pragma once
// Model output made harmless for a terminal. A model's text is untrusted: written raw, an escape
// sequence in it could move the cursor, clear the screen, retitle the window, redefine keys or
// hide earlier text. What a terminal acts on is shown as visible text instead:
//   C0 controls except \n and \t, and a \r not followed by \n:  caret notation (ESC ^[, BEL ^G, CR ^M)
//   DEL:                                                       ^?
//   C1 controls U+0080..U+009F (8-bit CSI, OSC, ...):           <U+009B>
//   bytes that are not UTF-8:                                  U+FFFD
// Everything else passes unchanged. Only for a terminal: piped output stays byte-exact.

#include <string>
#include <string_view>

namespace llmctl {

class TerminalText {
public:
    // The safe form of the next piece of output. A piece may end inside a UTF-8 sequence or
    // between \r and \n (a sequence can be split between two stream deltas): those bytes are
    // held back until the next piece decides what they are.
    std::string feed(std::string_view piece);
    // The end of the output: the safe form of whatever was held back.
    std::string finish();

private:
    std::string held_;
};

} // namespace llmctl
