/*
 * Stub bcryptprimitives.dll for wine 8.0.
 *
 * Go >= 1.24 programs on Windows get random bytes from ProcessPrng in
 * bcryptprimitives.dll, which wine 8.0 does not ship, so they die at start
 * ("bcryptprimitives.dll not found"). This stub exports ProcessPrng and
 * forwards to RtlGenRandom (SystemFunction036 in advapi32).
 *
 * Build: x86_64-w64-mingw32-gcc -shared -O2 -o bcryptprimitives.dll \
 *          bcryptprimitives.c bcryptprimitives.def -ladvapi32
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
