# Independent computation of the v2 packet vectors in docs/PROTOCOL.md §4 (zlib CRC-32,
# pyca/cryptography AES-256-GCM, HKDF-SHA256 and AES-ECB header protection). Prints "name: hex".
import zlib, struct
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand
from cryptography.hazmat.primitives import hashes

def h(s): return bytes.fromhex(s.replace(' ','').replace('\n',''))
RX=0x1122334455667788; TX=0x0102030405060708; TXID=bytes(range(12))
def first(t, pnlen): return 0xC0 | 0x10 | (t<<2) | (pnlen-1)
def header(t, dest, pn, pnlen): return bytes([first(t,pnlen)]) + struct.pack('>Q',dest) + pn.to_bytes(8,'big')[8-pnlen:]
def plain(t,dest,pn,pnlen,payload):
    b=header(t,dest,pn,pnlen)+payload
    return b+struct.pack('>I', zlib.crc32(b))
out={}
out['check']=plain(0,RX,1,1, struct.pack('>Q',TX)+TXID+bytes([4])+b'abcd')
out['check-ack']=plain(1,TX,0,1, TXID+bytes([4])+struct.pack('>H',7000)+bytes([192,0,2,1]))
out['data-datagram']=plain(2,RX,2,1, bytes([0x02,0x00,0x00,0x05])+b'hello')
out['data-ping']=plain(2,RX,2,1, bytes([0x01]))
out['data-close']=plain(2,RX,2,1, bytes([0x03,0xff,0x00]))
out['data-stream']=plain(2,RX,3,1, bytes([0x05,0x01,0x01,0x43,0xe8,0x02])+b'hi')
out['data-ack']=plain(2,RX,3,1, bytes([0x04,0x40,0x64,0x19,0x02,0x0a,0x03,0x05,0x40,0x49,0x00]))
recs=bytes([0x0a,0x01,0x01,0x03])+b'ssh'+bytes([0x0e,0x01,0x01])
out['channel-control']=plain(2,RX,4,1, bytes([0x13,0x01,0x00,len(recs)])+recs)
out['channel-data']=plain(2,RX,5,1, bytes([0x0d,0x01,0x02,0x01,0x43,0xe8,0x05])+b'hello'+bytes([0x10,0x01,0x03,0x80,0x01,0x00,0x00]))
# sealed
traffic=h("3d 9a d5 f9 7e 4b 27 40 e5 36 b0 44 7a b6 b6 7a 12 c8 cc 13 84 4b 5a 12 fb a9 b9 e3 c3 a7 bc ca")
atraffic=h("39 23 72 a0 21 0b 53 dc cc f9 af 4c e9 f6 b7 61 52 04 de e2 b9 43 40 23 3c 57 87 86 5e 5a da 32")
def expand(secret, info, n): return HKDFExpand(hashes.SHA256(), n, info).derive(secret)
hp=expand(traffic,b'hp',32); out['ks-offerer-hp']=hp
out['ks-answerer-hp']=expand(atraffic,b'hp',32)
def epoch(e): return expand(traffic,b'key'+e.to_bytes(8,'big'),32), expand(traffic,b'iv'+e.to_bytes(8,'big'),12)
def sealed(pn,pnlen,payload):
    key,iv=epoch(pn>>22)
    nonce=bytes(a^b for a,b in zip(iv, bytes(4)+pn.to_bytes(8,'big')))
    hd=header(2,RX,pn,pnlen)
    ct=AESGCM(key).encrypt(nonce,payload,hd)
    pkt=bytearray(hd+ct)
    sample=bytes(pkt[13:29])
    enc=Cipher(algorithms.AES(hp),modes.ECB()).encryptor()
    mask=enc.update(sample)+enc.finalize()
    pkt[0]^=mask[0]&0x03
    for i in range(pnlen): pkt[9+i]^=mask[1+i]
    return bytes(pkt), mask[:5]
out['sealed-pn5'],m5=sealed(5,1,bytes([0x01])+b'hello')
out['sealed-epoch1'],m1=sealed(1<<22,3,bytes([0x01]))
for k,v in out.items():
    print(k+': '+v.hex(' '))
print('mask-pn5: '+m5.hex(' '))
print('mask-epoch1: '+m1.hex(' '))
