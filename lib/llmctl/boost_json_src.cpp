// Boost.JSON (1.81) ships its non-template parts as source to be compiled once; Debian has no
// prebuilt library for it in the packages llmctl uses (its parser is request_fields').
#include <boost/json/src.hpp>
