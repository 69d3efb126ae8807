/* The hostname grammar the allowlist speaks (RFC 1123 host names, plus '_' which real
 * service names use): labels of letters, digits, '-' and '_', 1-63 bytes each, at most
 * 253 bytes in all without the one optional trailing dot. Anything else is refused, never
 * repaired: a name the allowlist cannot read exactly must not be matched approximately. */
#include "egress_inspector/name.h"

static ei_reason refuse(ei_reason why, char out[EI_NAME_MAX + 1], size_t *out_len)
{
    /* A refused name leaves an empty string behind, never a prefix of the bad one. */
    out[0] = '\0';
    *out_len = 0;
    return why;
}

ei_reason ei_name_normalize(const uint8_t *name, size_t len, char out[EI_NAME_MAX + 1],
                            size_t *out_len)
{
    if (len > 0 && name[len - 1] == '.')
        len--;
    if (len == 0)
        return refuse(EI_REASON_EMPTY_NAME, out, out_len);
    if (len > EI_NAME_MAX)
        return refuse(EI_REASON_INVALID_NAME, out, out_len);
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t ch = name[i];
        if (ch == '.') {
            if (label == 0)
                return refuse(EI_REASON_INVALID_NAME, out, out_len);
            label = 0;
        } else if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_') {
            label++;
        } else if (ch >= 'A' && ch <= 'Z') {
            ch = ei_ascii_lower(ch);
            label++;
        } else {
            return refuse(EI_REASON_INVALID_NAME, out, out_len);
        }
        if (label > 63)
            return refuse(EI_REASON_INVALID_NAME, out, out_len);
        out[i] = (char)ch;
    }
    /* A name that ended in ".." still ends in an empty label after one dot is dropped. */
    if (label == 0)
        return refuse(EI_REASON_INVALID_NAME, out, out_len);
    out[len] = '\0';
    *out_len = len;
    return EI_REASON_NONE;
}
