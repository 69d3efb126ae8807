/* The hostname grammar the allowlist speaks (RFC 1123 host names, plus '_' which real
 * service names use): labels of letters, digits, '-' and '_', 1-63 bytes each, at most
 * 253 bytes in all without the one optional trailing dot. */
#include <string.h>

#include "egress_inspector/policy.h"

ei_reason ei_name_normalize(const uint8_t *name, size_t len, char out[EI_NAME_MAX + 1],
                            size_t *out_len)
{
    *out_len = 0;
    out[0] = '\0';
    if (len > 0 && name[len - 1] == '.')
        len--;
    if (len == 0)
        return EI_REASON_EMPTY_NAME;
    if (len > EI_NAME_MAX)
        return EI_REASON_INVALID_NAME;
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t ch = name[i];
        if (ch == '.') {
            if (label == 0)
                return EI_REASON_INVALID_NAME;
            label = 0;
        } else if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_') {
            label++;
        } else if (ch >= 'A' && ch <= 'Z') {
            ch = (uint8_t)(ch + 32);
            label++;
        } else {
            return EI_REASON_INVALID_NAME;
        }
        if (label > 63)
            return EI_REASON_INVALID_NAME;
        out[i] = (char)ch;
    }
    if (label == 0)
        return EI_REASON_INVALID_NAME;
    out[len] = '\0';
    *out_len = len;
    return EI_REASON_NONE;
}
