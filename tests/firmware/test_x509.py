# Tests of meterfw.x509 that run unchanged under pytest and on MicroPython (a runner calls every test_*
# function): plain functions and asserts, no pytest, no fixtures, no f-strings.
#
# The certificates below were made once by a throwaway script with pyca/cryptography 50.0.2, through
# make_certificate() of tests/test_x509_properties.py, within the SMKI profile and with the extensions
# of the RTDS certificates: keyUsage (critical), subjectKeyIdentifier, subjectAltName (critical,
# otherName hardwareModuleName) for devices, basicConstraints (critical) for CAs, certificatePolicies
# (critical, 1.2.826.0.1.8641679.1.2.1.4), authorityKeyIdentifier. Private keys: the scalars *_KEY below,
# each SHA-256("meterlab x509 test " + label); key identifiers: SHA-256("ski " + label)[:8]; validity
# from 2020-01-01 (the device: 2016-04-06, UTCTime) to 2040-12-31 23:59:59 (UTCTime) or 9999-12-31
# 23:59:59 (GeneralizedTime).
#
#   ROOT          self-signed: CN=Root, OU=07, x500UniqueIdentifier 90b3d51f30000002; CA, no pathLen
#   ORG_CA        by ROOT: CN=Z1, OU=07; CA, pathLen 0
#   SUPPLIER_DS   by ORG_CA: CN=GITTESTSUPPLIER, OU=02, x500UniqueIdentifier 90b3d51f30010000; DS
#   SUPPLIER_KA   the same subject, KA; serial with its top bit set (encoded with a leading 00)
#   DEVICE_CA     by ROOT: CN=E357; CA, pathLen 0
#   DEVICE_DS     by DEVICE_CA: empty subject, hardwareModuleName 00db123456789001; DS
#   SUB_CA        by ORG_CA: a CA below a pathLen 0 CA; SUB_LEAF by SUB_CA (00db123456789002, KA)
#   NOT_CA_CHILD  by SUPPLIER_DS (key and name), which is no CA
#   BAD_AKI_LEAF  by DEVICE_CA, but its authorityKeyIdentifier names OTHER's key identifier
#   CA_NO_CERT_SIGN  by ROOT: DEVICE_CA's name and key, a CA, but keyUsage cRLSign only
#   CRITICAL_UNKNOWN  by DEVICE_CA: with a critical extension 1.3.6.1.4.1.99999.1 (NULL)
import hashlib

from meterfw import x509
from meterfw.crypto import p256
from mpcheck import flip, raised


def h(text):
    return bytes.fromhex(text)


ROOT_KEY = 0x9d58a1fae9220ac9c84c8cc1f749b004c6a6f315834fb93ff7497eaf468b9184
ORG_CA_KEY = 0x593613b965d1385b6cf8968cd8ffc663db92f610d65ddce50e2c40f6c9439ed0
SUPPLIER_DS_KEY = 0x9e6802842ca7cd5ec148c27fafdea0bfb06c4222469227d406c7106ef27afb3e
SUPPLIER_KA_KEY = 0x365f2a06873533a66e26f8b8026f1de0cfbf4d2adeab6f7f5db51945ed217970
DEVICE_CA_KEY = 0xa78b75401cd29f6a1fab25e271f33d82a52d9d3eda0c504d7ec9bade9527f412
DEVICE_DS_KEY = 0x7722e0c6336b6cf1b05ce53c38172d57d58dbd9adeb4a84d2d812bd33bc74e88
SUB_CA_KEY = 0x74398b18a1f5ddbf2edee4bf75a981dbe7407cfb7454c0df7e89908ee27b967b
SUB_LEAF_KEY = 0x5e785369eb128715a417bfef23a8756b36ca851e1e3878dc10712f4d277f3f45
OTHER_KEY = 0x2c7c63d9ec906b395b7aa0ff28be8ae0f2d992876d080b4cb1a94cc5b2b8e2f3


ROOT = h(
    "308201a63082014ca003020102020101300a06082a8648ce3d0403023030310d300b06035504031304526f6f74310b30"
    "09060355040b1302303731123010060355042d03090090b3d51f300000023020170d3230303130313030303030305a18"
    "0f39393939313233313233353935395a3030310d300b06035504031304526f6f74310b3009060355040b130230373112"
    "3010060355042d03090090b3d51f300000023059301306072a8648ce3d020106082a8648ce3d03010703420004699302"
    "a8999f13bc3d6174de8ac0f848141d215ee8a2f1b215f7e95862ae6872e5f9ba08195cff27ef400c9610f24ba10d94ce"
    "160bf360aa5ee7ac3ea5b37cb8a3553053300e0603551d0f0101ff04040302010630110603551d0e040a040856617ac4"
    "10f08e50300f0603551d130101ff040530030101ff301d0603551d200101ff04133011300f060d2a863a0001848fb90f"
    "01020104300a06082a8648ce3d0403020348003045022100d3397d0975f097cab3085a783425d96d830d62a5ff6cb078"
    "fb9dd3c124efb0890220510555682a23a24bd64410453b886114a8fdcfcb027828ffc26658d45321163a"
)
ORG_CA = h(
    "308201a93082014fa00302010202020100300a06082a8648ce3d0403023030310d300b06035504031304526f6f74310b"
    "3009060355040b1302303731123010060355042d03090090b3d51f300000023020170d3230303130313030303030305a"
    "180f39393939313233313233353935395a301a310b3009060355040313025a31310b3009060355040b13023037305930"
    "1306072a8648ce3d020106082a8648ce3d030107034200041b6e95486f0eedef05a4b4ba6ab91fe5ee495f52b891d9e3"
    "0fb9eca2abfffc0661c8be506b912c42f3bbb84d11e66b06bed7a7ff70b56e21b4f116f3bf45ca23a36d306b300e0603"
    "551d0f0101ff04040302010630110603551d0e040a0408fed7184a13bff52130120603551d130101ff040830060101ff"
    "020100301d0603551d200101ff04133011300f060d2a863a0001848fb90f0102010430130603551d23040c300a800856"
    "617ac410f08e50300a06082a8648ce3d04030203480030450220126aa78e16e79ad7040fbbaf28705815cb562ebb93e0"
    "3b3c168ae7f71948002b022100acc5b876e96044356f81349b0f4e41e7eb78782287b5749e3d26e282a3e08646"
)
SUPPLIER_DS = h(
    "308201ac30820152a00302010202104fbc525201a1d7586c1bc1c4734deb9f300a06082a8648ce3d040302301a310b30"
    "09060355040313025a31310b3009060355040b13023037301e170d3230303130313030303030305a170d343031323331"
    "3233353935395a303b3118301606035504030c0f47495454455354535550504c494552310b3009060355040b0c023032"
    "31123010060355042d03090090b3d51f300100003059301306072a8648ce3d020106082a8648ce3d030107034200045e"
    "f91c9d590bb493e22b8f24ce2e95c05d4686b68270f1ff81ba30c1c5cfb6f9cced6a3e0b6149278e32e04fa6365275cb"
    "53a1802dcebe4cb0f36f20ec914a98a3593057300e0603551d0f0101ff04040302078030110603551d0e040a0408056b"
    "6037e4fa0017301d0603551d200101ff04133011300f060d2a863a0001848fb90f0102010430130603551d23040c300a"
    "8008fed7184a13bff521300a06082a8648ce3d0403020348003045022045595773387e3fb3e81f8030bfd89e0e579b3d"
    "588208afe23b9c2386a9f1f386022100d631e38a49f3d66208b0073bdd3fc4d5a1c474180ca88b5acb0132cacb2fa37e"
)
SUPPLIER_KA = h(
    "308201ac30820153a003020102021100f1c56392ce9985dd1b78be2eb23d610b300a06082a8648ce3d040302301a310b"
    "3009060355040313025a31310b3009060355040b13023037301e170d3230303130313030303030305a170d3430313233"
    "313233353935395a303b3118301606035504030c0f47495454455354535550504c494552310b3009060355040b0c0230"
    "3231123010060355042d03090090b3d51f300100003059301306072a8648ce3d020106082a8648ce3d03010703420004"
    "a3bea786ae5c234a8abdd835c646aa06fb689a1d8098629a0ed6d2d6335e00152b5c4e983f0e9200f6fb5bdca00a7d04"
    "52fae2441ea7b9bdfd85cb16b8d25f2ca3593057300e0603551d0f0101ff04040302030830110603551d0e040a040852"
    "9b18bd6b185fab301d0603551d200101ff04133011300f060d2a863a0001848fb90f0102010430130603551d23040c30"
    "0a8008fed7184a13bff521300a06082a8648ce3d04030203470030440220196a2f19dd7217cab6cd9e0913fc6d235145"
    "5ea8cc436f440a9aaec4e4ac09d6022069b6683a11c36870d7a66c235bbc6d19f0873b7bcde68e37ce6a8a0858a97820"
)
DEVICE_CA = h(
    "3082019e30820144a00302010202020200300a06082a8648ce3d0403023030310d300b06035504031304526f6f74310b"
    "3009060355040b1302303731123010060355042d03090090b3d51f300000023020170d3230303130313030303030305a"
    "180f39393939313233313233353935395a300f310d300b06035504031304453335373059301306072a8648ce3d020106"
    "082a8648ce3d030107034200046072beaf3ee361d405d40eb136ced09bd3e47318b69a9124778baf36a0a34ffc1a378c"
    "55d574a62c6dbd3a98117b3c251b1bc1909332cb4ecc000078cfe62840a36d306b300e0603551d0f0101ff0404030201"
    "0630110603551d0e040a0408fa57424a28592b5f30120603551d130101ff040830060101ff020100301d0603551d2001"
    "01ff04133011300f060d2a863a0001848fb90f0102010430130603551d23040c300a800856617ac410f08e50300a0608"
    "2a8648ce3d0403020348003045022100a20043cfb55265a31ae806487fdc92f1170d2cfb77aaf24c91e2179f9870aebc"
    "022031e7661ce4cd13367b5d043b332bd32149db64028a2a6013e42003afc7f6415f"
)
DEVICE_DS = h(
    "308201a130820147a003020102021071c56392ce9985dd1b78be2eb23d610b300a06082a8648ce3d040302300f310d30"
    "0b06035504031304453335373020170d3136303430363030303030305a180f39393939313233313233353935395a3000"
    "3059301306072a8648ce3d020106082a8648ce3d03010703420004d49bc67bfc579f0e7dee66775d7d1860dad2666e72"
    "d8099343133b935f9acc4fb4fae27c1ffec62b44e708717eb2bf7ea1679cab75dd24437a0aec1dc9f911cea381913081"
    "8e300e0603551d0f0101ff04040302078030110603551d0e040a040815dd177dab730b4a30350603551d110101ff042b"
    "3029a02706082b06010505070804a01b3019060d2a863a0001848fb90f01020201040800db123456789001301d060355"
    "1d200101ff04133011300f060d2a863a0001848fb90f0102010430130603551d23040c300a8008fa57424a28592b5f30"
    "0a06082a8648ce3d0403020348003045022100cd054109b7de6b3a0ec5c67dbd5cc09777bcb60d23b8fdd46282f06601"
    "7a9f4c0220145838a0d7e6821803a96d5a9fdd5bf2b29aa375566c8263d329942530f03b43"
)
SUB_CA = h(
    "3082019230820138a00302010202020300300a06082a8648ce3d040302301a310b3009060355040313025a31310b3009"
    "060355040b13023037301e170d3230303130313030303030305a170d3430313233313233353935395a301e310f300d06"
    "035504031306537562204341310b3009060355040b130230373059301306072a8648ce3d020106082a8648ce3d030107"
    "0342000473e5ae1a1136d85539eb19b720217d38d4e42ed69579d0dde48d2e9bbb5542a6ac68f010110fdc0b054aed7d"
    "e5399f03a1d4a51affc82778569f281d216bc345a36a3068300e0603551d0f0101ff04040302010630110603551d0e04"
    "0a04081b665c0c853f401a300f0603551d130101ff040530030101ff301d0603551d200101ff04133011300f060d2a86"
    "3a0001848fb90f0102010430130603551d23040c300a8008fed7184a13bff521300a06082a8648ce3d04030203480030"
    "45022100971a6cd564b37673377c0567dfc2b8abf6f98c076b6f949c9372130f5556acca022064617e5851e0a53e7788"
    "b645fa8e7450df6f3d4a3320d3b4036dd74a5bd853a1"
)
SUB_LEAF = h(
    "308201a030820146a00302010202020301300a06082a8648ce3d040302301e310f300d06035504031306537562204341"
    "310b3009060355040b13023037301e170d3230303130313030303030305a170d3430313233313233353935395a300030"
    "59301306072a8648ce3d020106082a8648ce3d03010703420004382bf7500f0cab74a51d2a0e6295c901fe45a38a3dd5"
    "67b2df241ae61e5f89bf9bcc4f54bb231dcd9b8ff6050121297237df4dc88dd37b92a67e2caa415c1fafa3819130818e"
    "300e0603551d0f0101ff04040302030830110603551d0e040a040868571b9083a7b60e30350603551d110101ff042b30"
    "29a02706082b06010505070804a01b3019060d2a863a0001848fb90f01020201040800db123456789002301d0603551d"
    "200101ff04133011300f060d2a863a0001848fb90f0102010430130603551d23040c300a80081b665c0c853f401a300a"
    "06082a8648ce3d04030203480030450220152089fb8917be056470be9a3cba480072dc07190141f562f61a5eb76b2ab6"
    "b5022100a8a0e43f200460075361c2affaed6af7060d05c37bdf28f95459b12c4113dcba"
)
NOT_CA_CHILD = h(
    "308201bc30820163a00302010202020400300a06082a8648ce3d040302303b3118301606035504030c0f474954544553"
    "54535550504c494552310b3009060355040b0c02303231123010060355042d03090090b3d51f30010000301e170d3230"
    "303130313030303030305a170d3430313233313233353935395a30003059301306072a8648ce3d020106082a8648ce3d"
    "030107034200044ce81abc9968de5a039d5d2d87342c016dc81ad7c8cbd78d75bf0bc65820c8410737123e72f335bf6b"
    "e3761432576937f48e8d217eca6f5216acf76ab569dbdaa3819130818e300e0603551d0f0101ff040403020780301106"
    "03551d0e040a0408eb1ccee59399e39630350603551d110101ff042b3029a02706082b06010505070804a01b3019060d"
    "2a863a0001848fb90f01020201040800db123456789003301d0603551d200101ff04133011300f060d2a863a0001848f"
    "b90f0102010430130603551d23040c300a8008056b6037e4fa0017300a06082a8648ce3d040302034700304402205ae3"
    "485f30eea71597e915307c1d7c5dfc72a810912a5eb4ef269fc52ce646f3022045c4db7db23840e911dc1cd25959b0e0"
    "674ee2671b2e05f64741fb7133ff7779"
)
BAD_AKI_LEAF = h(
    "3082019230820137a00302010202020500300a06082a8648ce3d040302300f310d300b0603550403130445333537301e"
    "170d3230303130313030303030305a170d3430313233313233353935395a30003059301306072a8648ce3d020106082a"
    "8648ce3d030107034200044ce81abc9968de5a039d5d2d87342c016dc81ad7c8cbd78d75bf0bc65820c8410737123e72"
    "f335bf6be3761432576937f48e8d217eca6f5216acf76ab569dbdaa3819130818e300e0603551d0f0101ff0404030207"
    "8030110603551d0e040a0408eb1ccee59399e39630350603551d110101ff042b3029a02706082b06010505070804a01b"
    "3019060d2a863a0001848fb90f01020201040800db123456789004301d0603551d200101ff04133011300f060d2a863a"
    "0001848fb90f0102010430130603551d23040c300a8008eb1ccee59399e396300a06082a8648ce3d0403020349003046"
    "02210091d43052ff6fda375798ebc167de410df5a7587eb269c649e6ba7f8066383662022100e95b8deda7757c567473"
    "01bb7bd17320ec68157af9200084e23b47ef8c09e4a2"
)
CA_NO_CERT_SIGN = h(
    "3082019b30820141a00302010202020600300a06082a8648ce3d0403023030310d300b06035504031304526f6f74310b"
    "3009060355040b1302303731123010060355042d03090090b3d51f300000023020170d3230303130313030303030305a"
    "180f39393939313233313233353935395a300f310d300b06035504031304453335373059301306072a8648ce3d020106"
    "082a8648ce3d030107034200046072beaf3ee361d405d40eb136ced09bd3e47318b69a9124778baf36a0a34ffc1a378c"
    "55d574a62c6dbd3a98117b3c251b1bc1909332cb4ecc000078cfe62840a36a3068300e0603551d0f0101ff0404030201"
    "0230110603551d0e040a0408fa57424a28592b5f300f0603551d130101ff040530030101ff301d0603551d200101ff04"
    "133011300f060d2a863a0001848fb90f0102010430130603551d23040c300a800856617ac410f08e50300a06082a8648"
    "ce3d0403020348003045022100f417bb4e26d52a0732ddd21d85829eabf589a0d735e4851d5cb3f3546d333fb2022001"
    "081d866b4a9fcbcd229a29e3bf3a746d55c59da8792a8ebcc283e4ef09ad39"
)
CRITICAL_UNKNOWN = h(
    "308201a63082014ba00302010202020700300a06082a8648ce3d040302300f310d300b0603550403130445333537301e"
    "170d3230303130313030303030305a170d3430313233313233353935395a30003059301306072a8648ce3d020106082a"
    "8648ce3d030107034200044ce81abc9968de5a039d5d2d87342c016dc81ad7c8cbd78d75bf0bc65820c8410737123e72"
    "f335bf6be3761432576937f48e8d217eca6f5216acf76ab569dbdaa381a53081a2300e0603551d0f0101ff0404030207"
    "8030110603551d0e040a0408eb1ccee59399e39630350603551d110101ff042b3029a02706082b06010505070804a01b"
    "3019060d2a863a0001848fb90f01020201040800db123456789005301d0603551d200101ff04133011300f060d2a863a"
    "0001848fb90f0102010430130603551d23040c300a8008fa57424a28592b5f301206092b06010401868d1f010101ff04"
    "020500300a06082a8648ce3d040302034900304602210097d778c4152c1a79fc12914d54d04823bb63c3488dd7aac5ed"
    "c55dbfea404d5c022100b519f1a116a02faf3c8c984700bf141c053c64ab8ccc957c0fffabf450be20ea"
)


GBCS_POLICY = h("2a863a0001848fb90f01020104")  # 1.2.826.0.1.8641679.1.2.1.4
CA_USAGE = x509.KU_KEY_CERT_SIGN | x509.KU_CRL_SIGN
NOT_ON_CURVE = b"\x00" * 63 + b"\x01"


def key_id(label):
    return hashlib.sha256(b"ski " + label).digest()[:8]


def public(scalar):
    return p256.public_key(scalar.to_bytes(32, "big"))


def reason(function, *args):
    return raised(x509.CertificateError, function, *args).reason


def parsed(*ders):
    return [x509.parse(der) for der in ders]


# --- fields -------------------------------------------------------------------------------------------

def test_constants():
    assert x509.MAX_CERTIFICATE == 1200
    assert x509.KU_DIGITAL_SIGNATURE == 1
    assert x509.KU_KEY_AGREEMENT == 1 << 4
    assert x509.KU_KEY_CERT_SIGN == 1 << 5
    assert x509.KU_CRL_SIGN == 1 << 6
    assert issubclass(x509.CertificateError, ValueError)


def test_root_fields():
    cert = x509.parse(ROOT)
    assert cert.der == ROOT
    assert cert.tbs == ROOT[4:4 + 4 + (ROOT[6] << 8 | ROOT[7])]
    assert cert.serial == b"\x01"
    assert cert.issuer == cert.subject
    assert cert.subject[0] == 0x30 and len(cert.subject) == cert.subject[1] + 2
    assert cert.not_before == b"200101000000Z"
    assert cert.not_after == b"99991231235959Z"
    assert cert.common_name == "Root"
    assert cert.role == 7
    assert cert.entity_id == h("90b3d51f30000002")
    assert cert.public_key == public(ROOT_KEY)
    assert cert.key_usage == CA_USAGE
    assert cert.subject_key_id == key_id(b"root")
    assert cert.authority_key_id is None
    assert cert.is_ca is True
    assert cert.path_length is None
    assert cert.policy == GBCS_POLICY
    assert len(cert.signature) == 64
    assert x509.verify_signed_by(cert, public(ROOT_KEY))


def test_organisation_ca_fields():
    cert = x509.parse(ORG_CA)
    root = x509.parse(ROOT)
    assert cert.serial == b"\x01\x00"
    assert cert.issuer == root.subject
    assert cert.common_name == "Z1"
    assert cert.role == 7
    assert cert.entity_id is None
    assert cert.not_after == b"99991231235959Z"
    assert cert.public_key == public(ORG_CA_KEY)
    assert cert.key_usage == CA_USAGE
    assert cert.subject_key_id == key_id(b"org_ca")
    assert cert.authority_key_id == root.subject_key_id
    assert cert.is_ca is True
    assert cert.path_length == 0


def test_supplier_fields():
    ds, ka, org = parsed(SUPPLIER_DS, SUPPLIER_KA, ORG_CA)
    for cert in (ds, ka):
        assert cert.issuer == org.subject
        assert cert.common_name == "GITTESTSUPPLIER"
        assert cert.role == 2
        assert cert.entity_id == h("90b3d51f30010000")
        assert cert.not_before == b"200101000000Z"
        assert cert.not_after == b"401231235959Z"
        assert cert.is_ca is False
        assert cert.path_length is None
        assert cert.authority_key_id == key_id(b"org_ca")
        assert cert.policy == GBCS_POLICY
    assert ds.subject == ka.subject
    assert ds.serial == h("4fbc525201a1d7586c1bc1c4734deb9f")
    assert ka.serial == h("00f1c56392ce9985dd1b78be2eb23d610b")  # top bit set: a leading 00
    assert ds.key_usage == x509.KU_DIGITAL_SIGNATURE
    assert ka.key_usage == x509.KU_KEY_AGREEMENT
    assert ds.public_key == public(SUPPLIER_DS_KEY)
    assert ka.public_key == public(SUPPLIER_KA_KEY)
    assert ds.subject_key_id == key_id(b"supplier_ds")
    assert ka.subject_key_id == key_id(b"supplier_ka")


def test_device_fields():
    cert, ca = parsed(DEVICE_DS, DEVICE_CA)
    assert cert.subject == b"\x30\x00"
    assert cert.issuer == ca.subject
    assert ca.common_name == "E357" and ca.role is None and ca.entity_id is None
    assert ca.path_length == 0
    assert cert.common_name is None
    assert cert.role is None
    assert cert.entity_id == h("00db123456789001")  # from subjectAltName's hardwareModuleName
    assert cert.serial == h("71c56392ce9985dd1b78be2eb23d610b")
    assert cert.not_before == b"160406000000Z"
    assert cert.not_after == b"99991231235959Z"
    assert cert.public_key == public(DEVICE_DS_KEY)
    assert cert.key_usage == x509.KU_DIGITAL_SIGNATURE
    assert cert.subject_key_id == key_id(b"device_ds")
    assert cert.authority_key_id == ca.subject_key_id == key_id(b"device_ca")
    assert cert.is_ca is False


def test_signature_is_r_and_s_and_covers_tbs():
    cert = x509.parse(DEVICE_DS)
    assert x509.verify_signed_by(cert, public(DEVICE_CA_KEY))
    assert not x509.verify_signed_by(cert, public(ROOT_KEY))
    assert not x509.verify_signed_by(cert, b"\x00" * 64)
    assert not x509.verify_signed_by(DEVICE_DS, public(DEVICE_CA_KEY))  # not a Certificate
    assert p256.verify(public(DEVICE_CA_KEY), cert.tbs, cert.signature)
    start = DEVICE_DS.find(cert.tbs)
    assert start == 4 and DEVICE_DS[start + len(cert.tbs):start + len(cert.tbs) + 12] == h("300a06082a8648ce3d040302")


def test_input_may_be_any_bytes_like():
    assert x509.parse(bytearray(DEVICE_DS)).der == DEVICE_DS
    assert x509.parse(memoryview(DEVICE_DS)).der == DEVICE_DS
    assert isinstance(x509.parse(bytearray(DEVICE_DS)).der, bytes)
    for value in (None, 5, 1201, "30", [0x30, 0x00], 1.5):
        assert reason(x509.parse, value) == "not bytes"


# --- chains -------------------------------------------------------------------------------------------

def test_chains_that_verify():
    root, org, ds, ka, device_ca, device = parsed(ROOT, ORG_CA, SUPPLIER_DS, SUPPLIER_KA, DEVICE_CA, DEVICE_DS)
    anchor = public(ROOT_KEY)
    assert x509.verify_chain(root, [], anchor) is None  # length 0: the root itself
    assert x509.verify_chain(org, [], anchor) is None  # length 0: a CA the root signed
    assert x509.verify_chain(ds, [org], anchor) is None  # length 1
    assert x509.verify_chain(ka, (org,), anchor) is None
    assert x509.verify_chain(device, [device_ca], anchor) is None
    assert x509.verify_chain(device, [device_ca, root], anchor) is None  # length 2
    assert x509.verify_chain(ds, [org, root], anchor) is None
    # the issuing CA itself as the anchor
    assert x509.verify_chain(device, [], public(DEVICE_CA_KEY)) is None


def test_chain_too_long():
    root, device_ca, device = parsed(ROOT, DEVICE_CA, DEVICE_DS)
    assert reason(x509.verify_chain, device, [device_ca, root, root], public(ROOT_KEY)) == "chain too long"


def test_chain_failure_reasons():
    certs = parsed(ROOT, ORG_CA, SUPPLIER_DS, DEVICE_CA, DEVICE_DS, SUB_CA, SUB_LEAF, NOT_CA_CHILD,
                   BAD_AKI_LEAF, CA_NO_CERT_SIGN)
    root, org, ds, device_ca, device, sub_ca, sub_leaf, not_ca_child, bad_aki, no_cert_sign = certs
    anchor = public(ROOT_KEY)
    verify = x509.verify_chain
    assert reason(verify, ds, [device_ca], anchor) == "issuer name does not match"
    assert reason(verify, device, [device_ca, org], anchor) == "issuer name does not match"
    assert reason(verify, not_ca_child, [ds, org], anchor) == "issuer is not a CA"
    assert reason(verify, device, [no_cert_sign], anchor) == "issuer may not sign certificates"
    assert reason(verify, sub_leaf, [sub_ca, org], anchor) == "path length exceeded"
    assert reason(verify, bad_aki, [device_ca], anchor) == "key identifier does not match"
    assert reason(verify, device, [], anchor) == "bad signature"  # the device CA signed it, not the root
    assert reason(verify, device, [device_ca], public(ORG_CA_KEY)) == "bad signature"
    assert reason(verify, device, [device_ca], b"\x00" * 64) == "bad root key"
    assert reason(verify, device, [device_ca], NOT_ON_CURVE) == "bad root key"
    assert reason(verify, device, [device_ca], None) == "bad root key"
    assert reason(verify, DEVICE_DS, [device_ca], anchor) == "not a certificate"
    assert reason(verify, device, [DEVICE_CA], anchor) == "not a certificate"
    assert reason(verify, device, None, anchor) == "not a certificate"
    # each of those is well-formed and signed by its issuer: only the chain is wrong
    assert x509.verify_signed_by(not_ca_child, public(SUPPLIER_DS_KEY))
    assert x509.verify_signed_by(bad_aki, public(DEVICE_CA_KEY))
    assert x509.verify_signed_by(sub_leaf, public(SUB_CA_KEY))
    assert x509.verify_signed_by(sub_ca, public(ORG_CA_KEY))
    assert x509.verify_chain(sub_ca, [org], anchor) is None  # the CA below pathLen 0 is fine as a leaf
    assert x509.verify_chain(bad_aki, [], public(DEVICE_CA_KEY)) is None


def test_forged_signature_in_a_chain():
    device, device_ca, root = parsed(DEVICE_DS, DEVICE_CA, ROOT)
    signature_byte = len(DEVICE_DS) - 5  # inside s
    forged = x509.parse(flip(DEVICE_DS, signature_byte))
    assert forged.signature != device.signature and forged.tbs == device.tbs
    assert reason(x509.verify_chain, forged, [device_ca, root], public(ROOT_KEY)) == "bad signature"
    forged_ca = x509.parse(flip(DEVICE_CA, len(DEVICE_CA) - 5))
    assert reason(x509.verify_chain, device, [forged_ca, root], public(ROOT_KEY)) == "bad signature"
    assert reason(x509.verify_chain, device, [forged_ca], public(ROOT_KEY)) == "bad signature"


# --- rejections ---------------------------------------------------------------------------------------

def test_unknown_critical_extension_is_rejected():
    assert reason(x509.parse, CRITICAL_UNKNOWN) == "unsupported critical extension"


def test_oversize_is_rejected_before_parsing():
    assert reason(x509.parse, DEVICE_DS + b"\x00" * (1201 - len(DEVICE_DS))) == "certificate too large"
    assert reason(x509.parse, b"\x30" * 5000) == "certificate too large"
    assert reason(x509.parse, DEVICE_DS + b"\x00") == "trailing bytes after certificate"


def test_every_truncation_is_rejected():
    for der in (DEVICE_DS, ROOT, SUPPLIER_KA):
        for size in range(len(der)):
            raised(x509.CertificateError, x509.parse, der[:size])


def test_every_byte_with_one_bit_flipped_is_rejected_by_parse_or_by_the_chain():
    # One bit per byte (the bit index rotating with the position), in the leaf and in its issuer; all
    # 8 bits of every byte are flipped in tests/test_x509_properties.py under CPython.
    device, device_ca, root = parsed(DEVICE_DS, DEVICE_CA, ROOT)
    anchor = public(ROOT_KEY)
    survived = 0
    for index in range(len(DEVICE_DS)):
        try:
            changed = x509.parse(flip(DEVICE_DS, index, 1 << (index & 7)))
        except x509.CertificateError:
            continue
        survived += 1
        raised(x509.CertificateError, x509.verify_chain, changed, [device_ca, root], anchor)
    for index in range(len(DEVICE_CA)):
        try:
            changed = x509.parse(flip(DEVICE_CA, index, 1 << ((index + 3) & 7)))
        except x509.CertificateError:
            continue
        survived += 1
        raised(x509.CertificateError, x509.verify_chain, device, [changed, root], anchor)
    assert survived > 0  # some flips leave a well-formed certificate: the signatures catch those


# --- hand-built certificates: one DER rule broken at a time --------------------------------------------

def tlv(tag, content):
    size = len(content)
    if size < 0x80:
        return bytes((tag, size)) + content
    if size < 0x100:
        return bytes((tag, 0x81, size)) + content
    return bytes((tag, 0x82, size >> 8, size & 0xFF)) + content


def extension(oid, value, critical=False):
    return tlv(0x30, tlv(0x06, oid) + (h("0101ff") if critical else b"") + tlv(0x04, value))


ALGORITHM = h("300a06082a8648ce3d040302")
SPKI_PREFIX = h("3059301306072a8648ce3d020106082a8648ce3d030107034200")
DEVICE_NAME = tlv(0x30, tlv(0x31, tlv(0x30, h("060355040313") + b"\x04E357")))
KU_DS = extension(h("551d0f"), h("03020780"), True)
SKI = extension(h("551d0e"), tlv(0x04, b"\x11" * 8))
AKI = extension(h("551d23"), tlv(0x30, tlv(0x80, b"\x22" * 8)))
HW_ID = h("00db123456789001")
SAN = extension(h("551d11"), tlv(0x30, tlv(0xA0, h("06082b06010505070804") + tlv(0xA0, tlv(
    0x30, h("060d2a863a0001848fb90f010202010408") + HW_ID)))), True)
CA = extension(h("551d13"), tlv(0x30, h("0101ff")), True)
POLICIES = extension(h("551d20"), tlv(0x30, tlv(0x30, tlv(0x06, GBCS_POLICY))), True)
UNKNOWN_OID = h("2b06010401868d1f0102")  # 1.3.6.1.4.1.99999.1.2
R = b"\x01" + b"\x02" * 31
S = b"\x7f" + b"\x03" * 31


def integer(value):
    return tlv(0x02, value)


def build(version=h("a003020102"), serial=integer(b"\x05"), algorithm=ALGORITHM, issuer=DEVICE_NAME,
          validity=tlv(0x30, tlv(0x17, b"200101000000Z") + tlv(0x18, b"99991231235959Z")),
          subject=b"\x30\x00", spki=None, extensions=(KU_DS, SKI, SAN, POLICIES, AKI), wrap=None,
          outer_algorithm=ALGORITHM, signature=None, key=None):
    # A device certificate like DEVICE_DS, any piece replaced. signature: the BIT STRING's content
    # (None: 00 || SEQUENCE { r, s } of fixed values, or a real signature with key, a private scalar).
    if spki is None:
        spki = SPKI_PREFIX + b"\x04" + public(DEVICE_DS_KEY)
    body = b"".join(extensions)
    if wrap is None:
        wrap = tlv(0xA3, tlv(0x30, body))
    tbs = tlv(0x30, version + serial + algorithm + issuer + validity + subject + spki + wrap)
    if signature is None:
        if key is None:
            r, s = R, S
        else:
            rs = p256.sign(key.to_bytes(32, "big"), tbs)
            r, s = rs[:32], rs[32:]
        r = b"\x00" + r if r[0] & 0x80 else r
        s = b"\x00" + s if s[0] & 0x80 else s
        signature = b"\x00" + tlv(0x30, integer(r) + integer(s))
    return tlv(0x30, tbs + outer_algorithm + tlv(0x03, signature))


def test_the_builder_builds_a_good_certificate():
    cert = x509.parse(build())
    assert cert.entity_id == HW_ID
    assert cert.subject_key_id == b"\x11" * 8 and cert.authority_key_id == b"\x22" * 8
    assert cert.signature == R + S
    assert cert.serial == b"\x05"
    signed = x509.parse(build(key=DEVICE_CA_KEY, issuer=x509.parse(DEVICE_CA).subject,
                              extensions=(KU_DS, SKI, SAN, POLICIES)))
    assert x509.verify_chain(signed, [x509.parse(DEVICE_CA)], public(ROOT_KEY)) is None


def test_structure_rules():
    assert reason(x509.parse, b"") == "truncated"
    assert reason(x509.parse, h("3100")) == "expected certificate"
    assert reason(x509.parse, h("3080") + build()[4:] + h("0000")) == "indefinite length"
    assert reason(x509.parse, h("30830001") + b"\x00" * 20) == "length too long"
    good = build()
    assert reason(x509.parse, h("3f01") + good[2:]) == "multi-byte tag"
    # a non-minimal length: 30 82 00 7f ... for a 127-byte content
    assert reason(x509.parse, h("3082007f") + b"\x00" * 127) == "length not minimal"
    assert reason(x509.parse, h("30817f") + b"\x00" * 127) == "length not minimal"
    assert reason(x509.parse, good + b"\x00") == "trailing bytes after certificate"


def test_tbs_rules():
    assert reason(x509.parse, build(version=h("a003020101"))) == "not a v3 certificate"
    assert reason(x509.parse, build(version=b"")) == "not a v3 certificate"
    assert reason(x509.parse, build(serial=integer(b"\x00"))) == "serial number is zero"
    assert reason(x509.parse, build(serial=integer(b"\x80"))) == "negative serial number"
    assert reason(x509.parse, build(serial=integer(b"\x00\x05"))) == "serial number not minimal"
    assert reason(x509.parse, build(serial=integer(b""))) == "empty serial number"
    assert x509.parse(build(serial=integer(b"\x7f" * 20))).serial == b"\x7f" * 20
    assert reason(x509.parse, build(serial=integer(b"\x7f" * 21))) == "serial number too long"
    assert reason(x509.parse, build(serial=integer(b"\x00" + b"\x80" * 20))) == "serial number too long"
    sha1 = h("300906072a8648ce3d0401")
    assert reason(x509.parse, build(algorithm=sha1)) == "signature algorithm is not ecdsa-with-SHA256"
    assert reason(x509.parse, build(outer_algorithm=sha1)) == "signature algorithm is not ecdsa-with-SHA256"
    assert reason(x509.parse, build(issuer=b"\x30\x00")) == "empty issuer"
    times = (tlv(0x17, b"2001010000Z"), tlv(0x17, b"200101000000"), tlv(0x18, b"200101000000Z"),
             tlv(0x17, b"2001010000a0Z"), tlv(0x17, b"20010100000.Z"), tlv(0x04, b"200101000000Z"))
    for time in times:
        validity = tlv(0x30, time + tlv(0x17, b"200101000000Z"))
        assert reason(x509.parse, build(validity=validity)) in ("malformed time", "expected time")
    validity = tlv(0x30, tlv(0x17, b"200101000000Z") * 3)
    assert reason(x509.parse, build(validity=validity)) == "trailing bytes after validity"
    compressed = h("3039301306072a8648ce3d020106082a8648ce3d030107032200") + b"\x02" + public(ROOT_KEY)[:32]
    assert reason(x509.parse, build(spki=compressed)) == "public key is not an uncompressed P-256 key"
    assert reason(x509.parse, build(spki=SPKI_PREFIX + b"\x04" + NOT_ON_CURVE)) == "public key not on the curve"
    assert reason(x509.parse, build(wrap=b"")) == "missing extensions"
    assert reason(x509.parse, build(extensions=())) == "empty extensions"
    unique = tlv(0xA2, b"\x00\x01")  # subjectUniqueID: not in the profile
    assert reason(x509.parse, build(wrap=unique + tlv(0xA3, tlv(0x30, KU_DS)))) == "expected extensions"
    twice = tlv(0xA3, tlv(0x30, KU_DS)) * 2
    assert reason(x509.parse, build(wrap=twice)) == "trailing bytes after extensions"


def _rdn(oid, value):
    return tlv(0x31, tlv(0x30, tlv(0x06, oid) + value))


def test_name_rules():
    cn = _rdn(h("550403"), tlv(0x13, b"Meter 1"))
    ou = _rdn(h("55040b"), tlv(0x0C, b"0a"))
    uid = _rdn(h("55042d"), tlv(0x03, b"\x00" + HW_ID))
    other = _rdn(h("55040a"), tlv(0x13, b"Any Org"))  # organizationName: ignored
    cert = x509.parse(build(subject=tlv(0x30, cn + ou + other + uid), extensions=(KU_DS,)))
    assert cert.common_name == "Meter 1" and cert.role == 10 and cert.entity_id == HW_ID
    utf8 = _rdn(h("550403"), tlv(0x0C, b"Z\xc3\xa4hler"))
    assert x509.parse(build(subject=tlv(0x30, utf8), extensions=(KU_DS,))).common_name == "Z\u00e4hler"
    assert x509.parse(build(subject=tlv(0x30, uid), extensions=(KU_DS, SAN))).entity_id == HW_ID
    bad_subjects = (
        (tlv(0x30, cn + cn), "duplicate name attribute"),
        (tlv(0x30, ou + ou), "duplicate name attribute"),
        (tlv(0x30, tlv(0x31, tlv(0x30, h("060355040313") + b"\x01A") * 2)), "trailing bytes after attribute"),
        (tlv(0x30, tlv(0x31, b"")), "truncated"),
        (tlv(0x30, tlv(0x30, b"")), "expected RDN"),
        (tlv(0x30, _rdn(h("550403"), tlv(0x13, b"a_b"))), "bad PrintableString"),
        (tlv(0x30, _rdn(h("550403"), tlv(0x13, b""))), "empty string"),
        (tlv(0x30, _rdn(h("550403"), tlv(0x16, b"ia5"))), "unsupported string type"),
        (tlv(0x30, _rdn(h("550403"), tlv(0x0C, b"\xff\xfe"))), "bad UTF8String"),
        (tlv(0x30, _rdn(h("55040b"), tlv(0x13, b"2"))), "role is not two hex digits"),
        (tlv(0x30, _rdn(h("55040b"), tlv(0x13, b"0g"))), "role is not two hex digits"),
        (tlv(0x30, _rdn(h("55040b"), tlv(0x13, b"002"))), "role is not two hex digits"),
        (tlv(0x30, _rdn(h("55042d"), tlv(0x03, b"\x01" + HW_ID))), "x500UniqueIdentifier is not an 8-byte BIT STRING"),
        (tlv(0x30, _rdn(h("55042d"), tlv(0x03, b"\x00" + HW_ID[:7]))), "x500UniqueIdentifier is not an 8-byte BIT STRING"),
        (tlv(0x30, _rdn(h("55042d"), tlv(0x04, HW_ID))), "x500UniqueIdentifier is not an 8-byte BIT STRING"),
        (tlv(0x30, _rdn(h("8055"), tlv(0x13, b"x"))), "malformed OID"),
        (tlv(0x30, _rdn(h("5584"), tlv(0x13, b"x"))), "malformed OID"),
        (tlv(0x30, _rdn(b"", tlv(0x13, b"x"))), "malformed OID"),
        (tlv(0x30, uid), "entity ids differ"),
    )
    other_san = extension(h("551d11"), tlv(0x30, tlv(0xA0, h("06082b06010505070804") + tlv(0xA0, tlv(
        0x30, h("0603550403040801020304050607ff"))))), True)
    for subject, why in bad_subjects:
        assert reason(x509.parse, build(subject=subject, extensions=(KU_DS, other_san))) == why, why
        if why != "entity ids differ":  # the issuer's own ids are not compared with the SAN
            assert reason(x509.parse, build(issuer=subject, extensions=(KU_DS, other_san))) == why, why


def test_extension_rules():
    unknown = extension(UNKNOWN_OID, h("0500"))
    cert = x509.parse(build(extensions=(KU_DS, unknown)))
    assert cert.subject_key_id is None and cert.authority_key_id is None and cert.entity_id is None
    assert cert.policy is None and cert.is_ca is False and cert.path_length is None
    assert x509.parse(build(extensions=(SKI,))).key_usage == 0
    bad = (
        ((KU_DS, KU_DS), "duplicate extension"),
        ((SKI, KU_DS, SKI), "duplicate extension"),
        ((unknown, unknown), "duplicate extension"),
        ((extension(UNKNOWN_OID, h("0500"), True),), "unsupported critical extension"),
        ((tlv(0x30, h("0603551d0f010100") + tlv(0x04, h("03020780"))),), "BOOLEAN not DER TRUE"),
        ((tlv(0x30, h("0603551d0f0101ff0101ff") + tlv(0x04, h("03020780"))),), "expected extension value"),
        ((tlv(0x30, h("0603551d0f") + tlv(0x04, h("03020780")) + h("0500")),), "trailing bytes after extension value"),
        ((extension(h("551d0f"), h("03020700")),), "keyUsage not DER"),  # no bit set
        ((extension(h("551d0f"), h("03020680")),), "keyUsage not DER"),  # trailing zero bit
        ((extension(h("551d0f"), h("030207c0")),), "keyUsage not DER"),  # an unused bit set
        ((extension(h("551d0f"), h("03020880")),), "keyUsage not DER"),
        ((extension(h("551d0f"), h("030100")),), "malformed keyUsage"),
        ((extension(h("551d0f"), h("03020780") + b"\x00"),), "trailing bytes after keyUsage"),
        ((extension(h("551d0e"), h("0400")),), "empty subjectKeyIdentifier"),
        ((extension(h("551d23"), h("30028000")),), "empty keyIdentifier"),
        ((extension(h("551d23"), h("3006820101800101")),), "malformed authorityKeyIdentifier"),
        ((extension(h("551d23"), h("3006800101800101")),), "malformed authorityKeyIdentifier"),
        ((extension(h("551d23"), h("3003040101")),), "malformed authorityKeyIdentifier"),
        ((extension(h("551d11"), h("3000")),), "empty subjectAltName"),
        ((extension(h("551d11"), h("3003040101")),), "malformed GeneralName"),
        ((extension(h("551d13"), h("3003010100")),), "BOOLEAN not DER TRUE"),
        ((extension(h("551d13"), h("3003020100")),), "pathLenConstraint without cA"),
        ((extension(h("551d13"), h("30060101ff020180")),), "negative pathLenConstraint"),
        ((extension(h("551d13"), h("30070101ff02020001")),), "pathLenConstraint not minimal"),
        ((extension(h("551d13"), h("30080101ff0203010000")),), "pathLenConstraint too large"),
        ((extension(h("551d13"), h("30060101ff0101ff")),), "expected pathLenConstraint"),
        ((extension(h("551d20"), h("3000")),), "empty certificatePolicies"),
        ((extension(h("551d20"), h("30023000")),), "truncated"),
        ((extension(h("551d20"), h("3006300406028001")),), "malformed OID"),
    )
    for extensions, why in bad:
        try:
            x509.parse(build(extensions=extensions))
        except x509.CertificateError as error:
            assert error.reason == why, (why, error.reason)
        else:
            assert False, why
    ca = x509.parse(build(extensions=(extension(h("551d13"), h("30060101ff020103")),)))
    assert ca.is_ca is True and ca.path_length == 3
    ca = x509.parse(build(extensions=(extension(h("551d13"), h("30070101ff02020080")),)))
    assert ca.path_length == 128
    assert x509.parse(build(extensions=(extension(h("551d13"), h("3000")),))).is_ca is False
    # keyUsage over two bytes: decipherOnly is bit 8
    assert x509.parse(build(extensions=(extension(h("551d0f"), h("0303070880")),))).key_usage == 0x110
    # authorityKeyIdentifier with issuer and serial too; certificatePolicies with qualifiers, two of them
    aki = extension(h("551d23"), h("300c8001aaa10482020000820101"))
    assert x509.parse(build(extensions=(aki,))).authority_key_id == b"\xaa"
    policies = extension(h("551d20"), tlv(0x30, tlv(0x30, tlv(0x06, GBCS_POLICY) + h("3000"))
                                          + tlv(0x30, h("0603550403"))))
    assert x509.parse(build(extensions=(policies,))).policy == GBCS_POLICY


def test_subject_alt_name_rules():
    def san(*names):
        return (extension(h("551d11"), tlv(0x30, b"".join(names)), True),)

    def hw(serial, hw_type=h("0603550403")):
        return tlv(0xA0, h("06082b06010505070804") + tlv(0xA0, tlv(0x30, hw_type + tlv(0x04, serial))))

    dns = tlv(0x82, b"meter.example")
    other = tlv(0xA0, h("0603550403") + tlv(0xA0, h("0500")))
    assert x509.parse(build(extensions=san(dns, other, hw(HW_ID)))).entity_id == HW_ID
    assert x509.parse(build(extensions=san(dns))).entity_id is None
    assert reason(x509.parse, build(extensions=san(hw(HW_ID), hw(HW_ID)))) == "duplicate hardwareModuleName"
    assert reason(x509.parse, build(extensions=san(hw(HW_ID[:7])))) == "hwSerialNum is not 8 bytes"
    assert reason(x509.parse, build(extensions=san(hw(HW_ID, h("0600"))))) == "malformed OID"
    assert reason(x509.parse, build(extensions=san(hw(HW_ID, b"")))) == "expected hwType"
    bare = tlv(0xA0, h("06082b06010505070804") + tlv(0x30, h("0603550403") + tlv(0x04, HW_ID)))
    assert reason(x509.parse, build(extensions=san(bare))) == "expected otherName value"
    extra = tlv(0xA0, h("06082b06010505070804") + tlv(0xA0, tlv(0x30, h("0603550403") + tlv(0x04, HW_ID) + h("0500"))))
    assert reason(x509.parse, build(extensions=san(extra))) == "trailing bytes after hwSerialNum"


def test_signature_rules():
    def signature(r, s, unused=b"\x00"):
        return unused + tlv(0x30, integer(r) + integer(s))

    cert = x509.parse(build(signature=signature(b"\x01", b"\x00\x80")))
    assert cert.signature == b"\x00" * 31 + b"\x01" + b"\x00" * 31 + b"\x80"
    # a superfluous leading 00 (two RTDS certificates have one) is tolerated: still 32 bytes
    cert = x509.parse(build(signature=signature(b"\x00\x1e" + b"\x01" * 31, S)))
    assert cert.signature == b"\x1e" + b"\x01" * 31 + S
    cases = (
        (signature(R, S, b"\x01"), "signature has unused bits"),
        (b"", "signature has unused bits"),
        (signature(b"\x00", S), "signature INTEGER is zero"),
        (signature(R, b"\x00\x00"), "signature INTEGER is zero"),
        (signature(b"\x80" + R[1:], S), "signature INTEGER not positive"),
        (signature(b"", S), "signature INTEGER not positive"),
        (signature(b"\x01" * 33, S), "signature INTEGER too long"),
        (signature(b"\x00\x00" + R, S), "signature INTEGER too long"),
        (signature(R, S) + b"\x00", "trailing bytes after ECDSA-Sig-Value"),
        (b"\x00" + tlv(0x30, integer(R) + integer(S) + integer(S)), "trailing bytes after ECDSA-Sig-Value"),
        (b"\x00" + tlv(0x30, integer(R)), "truncated"),
        (b"\x00" + tlv(0x31, integer(R) + integer(S)), "expected ECDSA-Sig-Value"),
    )
    for value, why in cases:
        assert reason(x509.parse, build(signature=value)) == why, why
