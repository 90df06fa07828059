"""A hostile SNMP v2c agent on loopback: it answers every GET, GETNEXT and GETBULK with the
next OIDs below what was asked, without end (an endless table), using pysnmp's own encoder.
Used by tests/integration/test_hostile.py."""
from lab.peers.blackhole import UDPPeer


class EndlessAgent(UDPPeer):
    """``with EndlessAgent() as agent:`` agent.port answers community 'public' forever."""

    def answer(self, data):
        from pyasn1.codec.ber import decoder, encoder
        from pysnmp.proto import api

        proto = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
        try:
            message, _ = decoder.decode(data, asn1Spec=proto.Message())
        except Exception:  # not ours to judge: drop it
            return None
        request = proto.apiMessage.get_pdu(message)
        response = proto.apiMessage.get_response(message)
        pdu = proto.apiMessage.get_pdu(response)
        asked = [name for name, _ in proto.apiPDU.get_varbinds(request)]
        count = 1
        if request.isSameTypeWith(proto.GetBulkRequestPDU()):
            count = max(1, min(50, int(proto.apiBulkPDU.get_max_repetitions(request))))
        varbinds = []
        for step in range(count):
            for name in asked:
                name = tuple(name)
                following = name + (step + 1,) if len(name) < 14 else \
                    name[:-1] + (name[-1] + step + 1,)
                varbinds.append((proto.ObjectIdentifier(following),
                                 proto.OctetString("row %d" % following[-1])))
        proto.apiPDU.set_varbinds(pdu, varbinds)
        return encoder.encode(response)
