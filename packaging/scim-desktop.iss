; Inno Setup 6 script for SCIM Desktop on Windows.
;
; packaging/build.py runs it after PyInstaller, as
;   ISCC /DAppVersion=0.1.0 /DBundleDir=dist\scim-desktop /DOutputDir=dist
;        /DOutputName=scim-desktop-0.1.0-windows-x86_64-setup /DIconFile=...\scim-desktop.ico
;        packaging\scim-desktop.iss
; Per-user install by default (no administrator rights needed); the user may choose a
; machine-wide install in the dialog.

#ifndef AppVersion
  #define AppVersion "0.0.0"
#endif
#ifndef BundleDir
  #define BundleDir "..\dist\scim-desktop"
#endif
#ifndef OutputDir
  #define OutputDir "..\dist"
#endif
#ifndef OutputName
  #define OutputName "scim-desktop-" + AppVersion + "-windows-x86_64-setup"
#endif
#ifndef IconFile
  #define IconFile "..\build\pyinstaller\icons\scim-desktop.ico"
#endif

[Setup]
AppId={{6C1B8E0A-5F3D-4B8E-9A57-3D0C2B7E51A4}
AppName=SCIM Desktop
AppVersion={#AppVersion}
AppVerName=SCIM Desktop {#AppVersion}
AppPublisher=SCIM Desktop maintainers
DefaultDirName={autopf}\SCIM Desktop
DefaultGroupName=SCIM Desktop
DisableProgramGroupPage=yes
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir={#OutputDir}
OutputBaseFilename={#OutputName}
SetupIconFile={#IconFile}
UninstallDisplayIcon={app}\scim-desktop.exe
Compression=lzma2/normal
SolidCompression=yes
WizardStyle=modern
LicenseFile=..\LICENSE

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
Source: "{#BundleDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\SCIM Desktop"; Filename: "{app}\scim-desktop.exe"
Name: "{autodesktop}\SCIM Desktop"; Filename: "{app}\scim-desktop.exe"; Tasks: desktopicon

[Run]
Filename: "{app}\scim-desktop.exe"; Description: "{cm:LaunchProgram,SCIM Desktop}"; Flags: nowait postinstall skipifsilent
