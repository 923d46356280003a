// UTF-8 as RFC 3629 defines it: no overlong forms, no surrogates (U+D800..U+DFFF, which a JSON
// "\ud800" escape decodes to), nothing past U+10FFFF.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace bb {

/// The length of the well-formed UTF-8 sequence at text[i] (1 to 4) and its code point in `cp`,
/// or 0 when the bytes there are not one.
size_t utf8Sequence(std::string_view text, size_t i, uint32_t& cp);

/// Whether all of `text` is well-formed UTF-8.
bool isUtf8(std::string_view text);

/// `text` with each byte that is not part of a well-formed sequence replaced by U+FFFD.
std::string toUtf8(std::string_view text);

}  // namespace bb
